// The status outrigger writes on an ExternalBackend: conditions, each address and what the checks
// and the policy say of it, each DNS name's last answer. Users read it; outrigger alone writes it.
import { z } from 'zod';
import { drainAnnotation } from './externalbackend.ts';

/** metav1.Condition, validated as the upstream type is. */
const condition = z.object({
  type: z
    .string()
    .max(316)
    .regex(
      /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$/,
    )
    .describe(
      "The condition's type: Ready, CertificateExpiringSoon, ForeignEndpoints (while a hand-written Endpoints of the Service stands beside the backend's slices), or BackupActive (on a backend with spec.backup: whether backups are published).",
    ),
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
      'Why, in CamelCase: AddressesReady, NoReadyAddresses, FailingOpen, EndpointsConflict, WriteFailed, ...; for CertificateExpiringSoon: CertificateExpiresSoon, CertificateExpired or CertificatesValid; for ForeignEndpoints: EndpointsHeldByAnotherWriter or AdoptionPending; for BackupActive: PrimariesNotReady, PrimariesRecovering or PrimariesReady.',
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
          dnsName: z
            .string()
            .describe('The entry of spec.dnsNames this address was resolved from.')
            .optional(),
          backup: z.boolean().describe('Listed under spec.backup.').optional(),
          probers: z
            .object({
              healthy: z.int().describe('Probers that reach it (or have not checked it yet).'),
              unhealthy: z.int().describe('Probers that see it fail.'),
              partitioned: z
                .int()
                .describe(
                  'Probers left out of the decision as partitioned (their views are not counted).',
                )
                .optional(),
              unhealthyZones: z
                .array(z.string())
                .describe('The zones of the probers that see it fail, where known.')
                .optional(),
            })
            .describe(
              'How the replicas that check it voted (--probers-per-address above 1): it is unhealthy when more of the counted probers see it fail than reach it.',
            )
            .optional(),
          standby: z
            .boolean()
            .describe(
              'A backup on standby: checked, not published while enough primaries are ready (condition BackupActive).',
            )
            .optional(),
          draining: z
            .boolean()
            .describe(
              `Drained (spec drain or the ${drainAnnotation} annotation): out of new connections, still checked.`,
            )
            .optional(),
          certificateNotAfter: z
            .string()
            .meta({ format: 'date-time' })
            .describe(
              'When the certificate the TLS-speaking check last saw expires (its notAfter), verified or not.',
            )
            .optional(),
        }),
      )
      .describe('Each listed address and what the checks and the policy say of it.')
      .optional(),
    dnsNames: z
      .array(
        z.object({
          name: z.string().describe('The name, as in spec.dnsNames.'),
          state: z
            .enum(['Pending', 'Resolved', 'Stale', 'Failed'])
            .describe(
              'Resolved; Stale (lookups fail, the last answer is still published for a bounded time); Failed (no answer, nothing published); Pending (not looked up yet).',
            ),
          addresses: z
            .array(z.string())
            .describe('The addresses it resolves to now (before the deny list and the policy).')
            .optional(),
          ttlSeconds: z.int().describe("The answer's TTL, as the records give it.").optional(),
          resolvedAt: z
            .string()
            .meta({ format: 'date-time' })
            .describe(
              'When an answer last confirmed these addresses (refreshed when they change, and otherwise every few minutes).',
            )
            .optional(),
          message: z
            .string()
            .describe('Why lookups fail, and what is published meanwhile.')
            .optional(),
        }),
      )
      .describe('Each name of spec.dnsNames and what DNS says of it.')
      .optional(),
    conditions: z
      .array(condition)
      .describe(
        'Ready, and CertificateExpiringSoon when a TLS-speaking check has seen certificates (metav1.Condition).',
      )
      .optional()
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  })
  .describe('What outrigger observed and published, and why.');

export type ExternalBackendStatus = z.output<typeof externalBackendStatus>;
