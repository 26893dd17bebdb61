// The ExternalBackend API (outrigger.dev/v1alpha1): one zod schema that types the code, validates
// objects at run time, and generates the CRD's openAPIV3Schema (npm run generate). Rules that the
// API server must enforce at admission are CEL rules attached with .meta(); their messages are
// written for the person running `kubectl apply`.
import { z } from 'zod';
import { checkFields, probeKindNames, type ProbeKindName } from '../health/kinds/index.ts';
import { cel, dnsLabel, matching, type Rule } from '../runtime/crdfields.ts';

export const group = 'outrigger.dev';
export const version = 'v1alpha1';
export const kind = 'ExternalBackend';
export const plural = 'externalbackends';
export const apiVersion = `${group}/${version}`;

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

/** A Kubernetes qualified name ("h2c", "kubernetes.io/h2c"), as Service appProtocol must be. */
const qualifiedName = matching(
  z.string().min(1).max(317),
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
  'must be a qualified name such as "http" or "kubernetes.io/h2c"',
);

/** A zone name as topology.kubernetes.io/zone carries it: a label value. */
const zoneName = matching(
  z.string().min(1).max(63),
  /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/,
  'must be a zone name as the topology.kubernetes.io/zone label carries it (letters, digits, "-", "_", "."; at most 63)',
);

const zoneDescription =
  "The zone of the server (as in the topology.kubernetes.io/zone label of the nodes), copied to the endpoint's zone; when every endpoint has one, also to its hints, so that a Service with trafficDistribution PreferSameZone keeps traffic in its zone. Default: spec.zone.";

/** The annotation that drains addresses without editing the spec (see drain.ts). */
export const drainAnnotation = 'outrigger.dev/drain';

/**
 * The opt-in (value "true") that lets a backend take over an Endpoints of its Service that was
 * written by hand, in place (see adoption in plan.ts). Without it such an object is never written.
 */
export const adoptEndpointsAnnotation = 'outrigger.dev/adopt-endpoints';

const drainDescription = `Take the address out of new connections while established ones finish (maintenance): published not ready but serving and terminating, still checked. The annotation ${drainAnnotation} (comma-separated IPs and DNS names) does the same without editing the spec.`;

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
          // Unicast only: link-local multicast (224.0.0.0/24, ff02::/16) is multicast, refused by
          // the next rule, and a person reads one reason for it rather than two.
          rule: '!isIP(self) || !ip(self).isLinkLocalUnicast()',
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
  drain: z.boolean().describe(drainDescription).optional(),
  zone: zoneName.describe(zoneDescription).optional(),
});

/** Most addresses one backend publishes, listed and resolved together (status stays bounded). */
export const maxAddresses = 5000;

/** Most DNS names one backend lists, and most addresses one name contributes. */
export const maxDnsNames = 32;
export const maxAddressesPerName = 64;

/**
 * A server named by DNS: resolved (A and AAAA) by outrigger, and each address it resolves to judged,
 * checked and published like one in spec.addresses, at every re-resolution.
 */
const dnsName = z.object({
  name: matching(
    z.string().min(1).max(253),
    /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/,
    'must be a DNS name in lowercase, such as "db-1.example.com" (labels of letters, digits and "-", at most 63 characters each; no trailing dot)',
    { rule: '!isIP(self)', message: 'is an IP address: list it under spec.addresses instead' },
  ).describe(
    'A DNS name, looked up as written (no search domains), e.g. "db-1.example.com". Its A and AAAA records are published and re-resolved when their TTL runs out; addresses the deny list or the ExternalBackendPolicy refuse are never published.',
  ),
  nodeName: dnsSubdomain
    .describe('Copied to the nodeName of each endpoint the name resolves to; informational.')
    .optional(),
  drain: z
    .boolean()
    .describe(drainDescription.replace('the address', 'every address of the name'))
    .optional(),
  zone: zoneName
    .describe(zoneDescription.replace('the server', 'the servers of the name'))
    .optional(),
});

/** Most backup addresses and backup DNS names one backend lists (see spec.backup). */
export const maxBackupAddresses = 1000;
export const maxBackupDnsNames = 8;

/**
 * Servers that carry traffic only while too few primaries are ready (HAProxy's and nginx's
 * `backup`, Envoy's lower priority). They are a list of their own rather than a flag on each
 * address so that an outrigger or a CRD from before this field never publishes them as primaries
 * after a rollback: a structural schema prunes an unknown field even from stored objects when it
 * reads them, and an older build's parser drops it, so a flag would vanish and leave its address
 * a primary; a whole list vanishes with its addresses.
 */
const backup = z
  .object({
    addresses: z
      .array(address)
      .max(maxBackupAddresses)
      .describe(
        `Backup servers by IP (at most ${String(maxBackupAddresses)}, unique), judged and checked like spec.addresses and published only while backups are needed. An IP also listed as a primary (in spec.addresses or resolved from spec.dnsNames) is a primary.`,
      )
      .default([])
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['ip'] }),
    dnsNames: z
      .array(dnsName)
      .max(maxBackupDnsNames)
      .describe(
        `Backup servers named by DNS (at most ${String(maxBackupDnsNames)} names), resolved like spec.dnsNames.`,
      )
      .default([])
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
    minReadyPrimaries: z
      .int()
      .min(1)
      .max(maxAddresses)
      .describe(
        'Backups are published while fewer primaries than this are ready (default 1), and withdrawn once this many have been ready for healthyThreshold checks. Primaries are spec.addresses, the addresses of spec.dnsNames and selected pods; one not checked yet counts as ready (it is published ready), a draining one does not.',
      )
      .default(1),
  })
  .describe(
    'Backup servers: checked all the time, published only while fewer than minReadyPrimaries primaries are ready. When backups are published, failOpen applies to primaries and backups together; a draining backup is published draining.',
  );

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

const kindList = `${probeKindNames.slice(0, -1).join(', ')} and ${probeKindNames.at(-1) ?? ''}`;

const healthCheck = z
  .object({
    ...checkFields(),
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
        'When no address passes its check and some fail (addresses not checked yet do not count), publish them all as ready (default true): a failure of the checks themselves must not empty the Service.',
      )
      .default(true),
    maxProbers: z
      .int()
      .min(1)
      .max(9)
      .describe(
        "At most this many outrigger replicas check each address, where the installation has several check each (--probers-per-address): 1 asks for the leader alone, for servers that cannot take a check from every replica. Default: the installation's number.",
      )
      .optional(),
  })
  .describe(
    `Active health checks of every address (set exactly one of ${kindList}). Without it every address is ready.`,
  )
  .meta(
    cel(
      {
        rule: `[${probeKindNames.map((k) => `has(self.${k})`).join(', ')}].exists_one(x, x)`,
        message: `set exactly one of ${kindList}`,
      },
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
function portNameRule(probe: ProbeKindName): Rule {
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
      .max(maxAddresses)
      .describe(
        'The servers outside the cluster (at most 5000, unique IPs). An address is published only when the deny list and the ExternalBackendPolicy allow it.',
      )
      .default([])
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['ip'] }),
    dnsNames: z
      .array(dnsName)
      .max(maxDnsNames)
      .describe(
        `Servers named by DNS (at most ${String(maxDnsNames)} names, each contributing at most ${String(maxAddressesPerName)} addresses). An address both listed and resolved is published once.`,
      )
      .default([])
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
    backup: backup.optional(),
    zone: zoneName
      .describe(
        'The zone of every address and DNS name that does not give its own (see spec.addresses[].zone).',
      )
      .optional(),
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
        rule: 'size(self.addresses) > 0 || size(self.dnsNames) > 0 || has(self.podSelector)',
        message: 'list at least one address or DNS name, or select pods with podSelector',
      },
      {
        rule: '!has(self.backup) || self.backup.dnsNames.all(b, !self.dnsNames.exists(p, p.name == b.name))',
        message:
          'a DNS name is either a primary (spec.dnsNames) or a backup (spec.backup.dnsNames), not both',
        fieldPath: '.backup.dnsNames',
      },
      ...probeKindNames.map(portNameRule),
    ),
  );

export type ExternalBackendSpec = z.output<typeof externalBackendSpec>;
export type ExternalBackendSpecInput = z.input<typeof externalBackendSpec>;

/** Every DNS name a backend resolves: its primaries' and its backups'. */
export function dnsNamesOf(spec: ExternalBackendSpec): string[] {
  return [...spec.dnsNames, ...(spec.backup?.dnsNames ?? [])].map((n) => n.name);
}
