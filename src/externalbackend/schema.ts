// The ExternalBackend API (outrigger.dev/v1alpha1): one zod schema that types the code, validates
// objects at run time, and generates the CRD's openAPIV3Schema (npm run generate). Rules that the
// API server must enforce at admission are CEL rules attached with .meta(); their messages are
// written for the person running `kubectl apply`.
import { z } from 'zod';

export const group = 'outrigger.dev';
export const version = 'v1alpha1';
export const kind = 'ExternalBackend';
export const plural = 'externalbackends';
export const apiVersion = `${group}/${version}`;

interface Rule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: string;
}
const cel = (...rules: Rule[]) => ({ 'x-kubernetes-validations': rules });

const dnsLabel = z
  .string()
  .min(1)
  .max(63)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/,
    'must be a DNS label: lowercase letters, digits and "-"',
  );

const dnsSubdomain = z
  .string()
  .min(1)
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
    'must be a DNS subdomain: lowercase letters, digits, "-" and "."',
  );

/** A port by number or by the name of an entry in spec.ports (Kubernetes int-or-string). */
const portRef = z
  .union([z.int().min(1).max(65535), dnsLabel])
  .meta({ 'x-kubernetes-int-or-string': true });

/**
 * An address outside the cluster. The CEL IP library (Kubernetes ≥ 1.31) checks what Endpoints
 * may not carry and what would let a namespace user aim traffic at the node itself
 * (CVE-2021-25740 class): loopback, link-local (incl. 169.254.169.254), multicast, unspecified.
 */
const address = z.object({
  ip: z
    .string()
    .max(45)
    .meta(
      cel(
        { rule: 'isIP(self)', message: 'must be an IPv4 or IPv6 address' },
        {
          rule: '!isIP(self) || ip.isCanonical(self)',
          message: 'must be written in canonical form (e.g. 2001:db8::1, not 2001:0db8:0:0::1)',
        },
        {
          rule: '!isIP(self) || !ip(self).isLoopback()',
          message: 'must not be a loopback address',
        },
        {
          rule: '!isIP(self) || !ip(self).isUnspecified()',
          message: 'must not be the unspecified address',
        },
        {
          rule: '!isIP(self) || !(ip(self).isLinkLocalUnicast() || ip(self).isLinkLocalMulticast())',
          message: 'must not be a link-local address (169.254.0.0/16, fe80::/10)',
        },
        {
          rule: "!isIP(self) || !(cidr('224.0.0.0/4').containsIP(self) || cidr('ff00::/8').containsIP(self))",
          message: 'must not be a multicast address',
        },
      ),
    ),
  nodeName: dnsSubdomain.optional(),
  hostname: dnsLabel.optional(),
});

const servicePort = z.object({
  name: dnsLabel.max(15),
  port: z.int().min(1).max(65535),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).default('TCP'),
  appProtocol: z.string().min(1).max(253).optional(),
});

const statusRange = z
  .string()
  .regex(
    /^[1-5][0-9]{2}(-[1-5][0-9]{2})?$/,
    'must be a status code like "200" or a range like "200-399"',
  );

const healthCheck = z
  .object({
    tcp: z.object({ port: portRef }).optional(),
    http: z
      .object({
        port: portRef,
        path: z.string().startsWith('/').max(1024).default('/'),
        scheme: z.enum(['HTTP', 'HTTPS']).default('HTTP'),
        expectedStatuses: z.array(statusRange).min(1).max(16).default(['200-399']),
      })
      .optional(),
    intervalSeconds: z.int().min(1).max(3600).default(10),
    timeoutSeconds: z.int().min(1).max(60).default(2),
    healthyThreshold: z.int().min(1).max(10).default(2),
    unhealthyThreshold: z.int().min(1).max(10).default(3),
    failOpen: z.boolean().default(true),
  })
  .meta(
    cel(
      { rule: 'has(self.tcp) != has(self.http)', message: 'set exactly one of tcp and http' },
      {
        rule: 'self.timeoutSeconds <= self.intervalSeconds',
        message: 'timeoutSeconds must not exceed intervalSeconds',
      },
    ),
  );

const labelSelector = z.object({
  matchLabels: z.record(z.string(), z.string()).optional(),
  matchExpressions: z
    .array(
      z.object({
        key: z.string().min(1).max(317),
        operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
        values: z.array(z.string().max(63)).max(64).optional(),
      }),
    )
    .max(16)
    .optional(),
});

/** A port named in spec.healthCheck must exist in spec.ports. */
function portNameRule(probe: 'tcp' | 'http'): Rule {
  const p = `self.healthCheck.${probe}.port`;
  return {
    rule: `!has(self.healthCheck) || !has(self.healthCheck.${probe}) || type(${p}) == int || self.ports.exists(x, x.name == ${p})`,
    message: `healthCheck.${probe}.port names a port that is not in spec.ports`,
    fieldPath: `.healthCheck.${probe}.port`,
  };
}

export const externalBackendSpec = z
  .object({
    service: z
      .object({
        name: dnsLabel.optional(),
        create: z.boolean().default(true),
        clusterIP: z.enum(['', 'None']).default(''),
      })
      .default({ create: true, clusterIP: '' }),
    ports: z
      .array(servicePort)
      .min(1)
      .max(100)
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
    addresses: z
      .array(address)
      .max(1000)
      .default([])
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['ip'] }),
    podSelector: labelSelector.optional(),
    healthCheck: healthCheck.optional(),
  })
  .meta(
    cel(
      {
        rule: 'size(self.addresses) > 0 || has(self.podSelector)',
        message: 'list at least one address, or select pods with podSelector',
      },
      portNameRule('tcp'),
      portNameRule('http'),
    ),
  );

const condition = z.object({
  type: z.string().max(316),
  status: z.enum(['True', 'False', 'Unknown']),
  observedGeneration: z.int().min(0).optional(),
  lastTransitionTime: z.string(),
  reason: z.string().max(1024),
  message: z.string().max(32768),
});

export const externalBackendStatus = z.object({
  observedGeneration: z.int().optional(),
  readyAddresses: z.int().optional(),
  totalAddresses: z.int().optional(),
  /** "ready/total", for the Addresses printer column. */
  addressSummary: z.string().optional(),
  addresses: z
    .array(
      z.object({
        ip: z.string(),
        ready: z.boolean(),
        /** Healthy, Unhealthy, Unknown (not probed yet), Denied (blocked by the deny list). */
        state: z.enum(['Healthy', 'Unhealthy', 'Unknown', 'Denied']).optional(),
        lastTransitionTime: z.string().optional(),
        message: z.string().optional(),
      }),
    )
    .optional(),
  conditions: z
    .array(condition)
    .optional()
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
});

export type ExternalBackendSpec = z.output<typeof externalBackendSpec>;
export type ExternalBackendSpecInput = z.input<typeof externalBackendSpec>;
export type ExternalBackendStatus = z.output<typeof externalBackendStatus>;
