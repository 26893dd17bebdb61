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

/**
 * A string that must match `pattern`, refused at admission with `message`. A bare OpenAPI pattern
 * error shows only the regular expression, so the CRD carries a CEL rule instead (crd.ts drops the
 * pattern that the rule repeats); zod checks the same pattern at run time.
 */
export function matching(base: z.ZodString, pattern: RegExp, message: string) {
  if (pattern.source.includes('"')) throw new Error('pattern must not contain a double quote');
  return base
    .regex(pattern, message)
    .meta(cel({ rule: `self.matches(r"${pattern.source}")`, message }));
}

const dnsLabelPattern = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsLabelMessage =
  'must be a DNS label: lowercase letters, digits and "-", starting and ending with a letter or digit';
const dnsLabel = matching(z.string().min(1).max(63), dnsLabelPattern, dnsLabelMessage);

const dnsSubdomain = matching(
  z.string().min(1).max(253),
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/,
  'must be a DNS subdomain: lowercase letters, digits, "-" and "."',
);

/** A Service name: a DNS-1035 label (starts with a letter), which the API server insists on. */
export const serviceNamePattern = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const serviceNameField = matching(
  z.string().min(1).max(63),
  serviceNamePattern,
  'must be a Service name: lowercase letters, digits and "-", starting with a letter',
);

/**
 * What an HTTP request target may carry (RFC 3986 path and query characters, with valid
 * percent-escapes). Node's HTTP client throws on anything else, and a header-breaking path such as
 * "/a\r\nHost: x" must never reach a socket.
 */
export const requestPathPattern = /^\/([A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*$/;

/** A Kubernetes qualified name ("h2c", "kubernetes.io/h2c"), as Service appProtocol must be. */
const qualifiedName = matching(
  z.string().min(1).max(317),
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
  'must be a qualified name such as "http" or "kubernetes.io/h2c"',
);

/** A port by number or by the name of an entry in spec.ports (Kubernetes int-or-string). */
const portRef = z
  .union([
    z.int().min(1).max(65535),
    z.string().min(1).max(63).regex(dnsLabelPattern, dnsLabelMessage),
  ])
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
  appProtocol: qualifiedName.optional(),
});

const statusRange = matching(
  z.string().max(7),
  /^[1-5][0-9]{2}(-[1-5][0-9]{2})?$/,
  'must be a status code like "200" or a range like "200-399"',
);

const healthCheck = z
  .object({
    tcp: z.object({ port: portRef }).optional(),
    http: z
      .object({
        port: portRef,
        path: matching(
          z.string().max(1024),
          requestPathPattern,
          'must be a request path starting with "/" and made of URL characters only: no spaces, control or non-ASCII characters (percent-encode them, e.g. %20)',
        ).default('/'),
        scheme: z.enum(['HTTP', 'HTTPS']).default('HTTP'),
        expectedStatuses: z
          .array(statusRange)
          .min(1)
          .max(16)
          .default(['200-399'])
          .meta(
            cel({
              rule: 'self.all(r, size(r) == 3 || int(r.substring(0, 3)) <= int(r.substring(4, 7)))',
              message: 'a status range must go from low to high, e.g. "200-399"',
            }),
          ),
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

export const labelSelector = z.object({
  matchLabels: z
    .record(z.string().max(317), z.string().max(63))
    .optional()
    .meta({ maxProperties: 64 }),
  matchExpressions: z
    .array(
      z
        .object({
          key: z.string().min(1).max(317),
          operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
          values: z.array(z.string().max(63)).max(64).optional(),
        })
        .meta(
          cel({
            rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
            message: 'In and NotIn need values; Exists and DoesNotExist take none',
          }),
        ),
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
        name: serviceNameField.optional(),
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
      .max(5000)
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
