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
    .describe(
      "The IPv4 or IPv6 address of a server outside the cluster, in canonical form. Loopback, link-local, multicast, unspecified addresses and the cluster's own ranges are refused or never published.",
    )
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
  nodeName: dnsSubdomain
    .describe(
      'Copied to the endpoint\'s nodeName (e.g. the VM\'s name, "etc-master1"); informational, kube-proxy does not route by it.',
    )
    .optional(),
  hostname: dnsLabel
    .describe("Copied to the endpoint's hostname (DNS label), for headless Services.")
    .optional(),
});

const servicePort = z.object({
  name: dnsLabel
    .max(15)
    .describe("The port's name (unique in spec.ports), as in the Service and the EndpointSlices."),
  port: z
    .int()
    .min(1)
    .max(65535)
    .describe(
      'The port the servers listen on; also the Service port (and its targetPort) when outrigger creates the Service.',
    ),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']).describe('TCP (default), UDP or SCTP.').default('TCP'),
  appProtocol: qualifiedName
    .describe(
      'The application protocol (e.g. "http", "kubernetes.io/h2c"), copied to the Service and slices.',
    )
    .optional(),
});

const statusRange = matching(
  z.string().max(7),
  /^[1-5][0-9]{2}(-[1-5][0-9]{2})?$/,
  'must be a status code like "200" or a range like "200-399"',
);

const healthCheck = z
  .object({
    tcp: z
      .object({
        port: portRef.describe(
          'The port to connect to: a number, or the name of an entry in spec.ports.',
        ),
      })
      .describe('Checks that a TCP connection to the address opens within timeoutSeconds.')
      .optional(),
    http: z
      .object({
        port: portRef.describe(
          'The port to send the request to: a number, or the name of an entry in spec.ports.',
        ),
        path: matching(
          z.string().max(1024),
          requestPathPattern,
          'must be a request path starting with "/" and made of URL characters only: no spaces, control or non-ASCII characters (percent-encode them, e.g. %20)',
        )
          .describe('The request path, default "/". Redirects are never followed.')
          .default('/'),
        scheme: z
          .enum(['HTTP', 'HTTPS'])
          .describe("HTTP (default) or HTTPS; HTTPS does not verify the server's certificate.")
          .default('HTTP'),
        expectedStatuses: z
          .array(statusRange)
          .min(1)
          .max(16)
          .describe(
            'Status codes ("200") or ranges ("200-399", the default) that count as healthy.',
          )
          .default(['200-399'])
          .meta(
            cel({
              rule: 'self.all(r, size(r) == 3 || int(r.substring(0, 3)) <= int(r.substring(4, 7)))',
              message: 'a status range must go from low to high, e.g. "200-399"',
            }),
          ),
      })
      .describe('Sends an HTTP GET and checks the response status.')
      .optional(),
    intervalSeconds: z
      .int()
      .min(1)
      .max(3600)
      .describe('Seconds between checks of one address (default 10; checks are jittered).')
      .default(10),
    timeoutSeconds: z
      .int()
      .min(1)
      .max(60)
      .describe('Seconds a check may take before it fails (default 2; at most intervalSeconds).')
      .default(2),
    healthyThreshold: z
      .int()
      .min(1)
      .max(10)
      .describe('Successes in a row that make an unhealthy address ready again (default 2).')
      .default(2),
    unhealthyThreshold: z
      .int()
      .min(1)
      .max(10)
      .describe(
        'Failures in a row that take a ready address out (default 3): a dead server leaves within intervalSeconds × unhealthyThreshold.',
      )
      .default(3),
    failOpen: z
      .boolean()
      .describe(
        'When every address fails, publish them all as ready (default true): a failure of the checks themselves must not empty the Service.',
      )
      .default(true),
  })
  .describe(
    'Active health checks of every address (set exactly one of tcp and http). Without it every address is ready.',
  )
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
    .describe('Labels that must all be present with these values.')
    .optional()
    .meta({ maxProperties: 64 }),
  matchExpressions: z
    .array(
      z
        .object({
          key: z.string().min(1).max(317).describe('The label key.'),
          operator: z
            .enum(['In', 'NotIn', 'Exists', 'DoesNotExist'])
            .describe('In, NotIn, Exists or DoesNotExist.'),
          values: z
            .array(z.string().max(63))
            .max(64)
            .describe('The values for In and NotIn; empty for Exists and DoesNotExist.')
            .optional(),
        })
        .meta(
          cel({
            rule: "self.operator in ['In', 'NotIn'] ? has(self.values) && size(self.values) > 0 : !has(self.values) || size(self.values) == 0",
            message: 'In and NotIn need values; Exists and DoesNotExist take none',
          }),
        ),
    )
    .max(16)
    .describe('Label requirements that must all hold.')
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
        name: serviceNameField
          .describe("The Service whose endpoints these are; default: the ExternalBackend's name.")
          .optional(),
        create: z
          .boolean()
          .describe(
            'Create (and own) a selectorless Service when none exists (default true). An existing selectorless Service is adopted, never owned; one with a selector is refused.',
          )
          .default(true),
        clusterIP: z
          .enum(['', 'None'])
          .describe(
            'For a created Service: "" allocates a ClusterIP (default), "None" makes it headless.',
          )
          .default(''),
      })
      .describe('The Service outrigger writes the Endpoints and EndpointSlices of.')
      .default({ create: true, clusterIP: '' }),
    ports: z
      .array(servicePort)
      .min(1)
      .max(100)
      .describe(
        'The ports every address serves (unique names), published in the Endpoints and slices.',
      )
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
    addresses: z
      .array(address)
      .max(5000)
      .describe(
        'The servers outside the cluster (at most 5000, unique IPs). An address is published only when the deny list and the ExternalBackendPolicy allow it.',
      )
      .default([])
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['ip'] }),
    podSelector: labelSelector
      .describe(
        "Also publish this namespace's pods that match, by the endpoints controller's readiness rules (for a migration from VMs to pods). {} selects every pod.",
      )
      .optional(),
    healthCheck: healthCheck.optional(),
  })
  .describe(
    'Addresses outside the cluster to publish as the endpoints of a selectorless Service, with health checks.',
  )
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

/** metav1.Condition, validated as the upstream type is. */
const condition = z.object({
  type: z
    .string()
    .max(316)
    .regex(
      /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
    )
    .describe("The condition's type: Ready."),
  status: z.enum(['True', 'False', 'Unknown']).describe('True, False or Unknown.'),
  observedGeneration: z
    .int()
    .min(0)
    .describe('The metadata.generation the condition was set for.')
    .optional(),
  lastTransitionTime: z
    .string()
    .meta({ format: 'date-time' })
    .describe('When status last changed.'),
  reason: z
    .string()
    .min(1)
    .max(1024)
    .regex(/^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$/)
    .describe(
      'Why, in CamelCase: Ready, NoReadyAddresses, FailingOpen, EndpointsConflict, WriteFailed, ...',
    ),
  message: z.string().max(32768).describe('The reason in words, for people.'),
});

export const externalBackendStatus = z
  .object({
    observedGeneration: z
      .int()
      .describe('The metadata.generation this status describes.')
      .optional(),
    service: z
      .string()
      .describe("The Service these are the endpoints of (spec.service.name, or the object's name).")
      .optional(),
    readyAddresses: z.int().describe('Addresses published as ready.').optional(),
    totalAddresses: z.int().describe('Addresses listed, pods included.').optional(),
    /** "ready/total", for the Addresses printer column. */
    addressSummary: z.string().describe('"ready/total", for the Addresses column.').optional(),
    addresses: z
      .array(
        z.object({
          ip: z.string().describe('The address.'),
          ready: z.boolean().describe('Whether it is published as ready.'),
          /** Healthy, Unhealthy, Unknown (not probed yet), Denied (blocked by the deny list). */
          state: z
            .enum(['Healthy', 'Unhealthy', 'Unknown', 'Denied'])
            .describe('Healthy, Unhealthy, Unknown (not checked yet) or Denied (never published).')
            .optional(),
          lastTransitionTime: z.string().describe('When state last changed.').optional(),
          message: z.string().describe("The last check's result, or why it is denied.").optional(),
        }),
      )
      .describe('Each listed address and what the checks and the policy say of it.')
      .optional(),
    conditions: z
      .array(condition)
      .describe('The Ready condition (metav1.Condition).')
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  })
  .describe('What outrigger observed and published, and why.');

export type ExternalBackendSpec = z.output<typeof externalBackendSpec>;
export type ExternalBackendSpecInput = z.input<typeof externalBackendSpec>;
export type ExternalBackendStatus = z.output<typeof externalBackendStatus>;
