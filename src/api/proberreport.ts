// The ProberReport API (outrigger.dev/v1alpha1, namespaced, in outrigger's own namespace): what one
// replica's health checks see, written by that replica alone (its pod's name is the object's name,
// and admission holds it to that) so that the leader can decide each address's health by a quorum
// of probers on different nodes. Only failures are listed: every other address of a backend the
// report covers is healthy in that replica's view, which keeps a report small and its writes rare
// (one per change of what it sees, batched, plus a renewal).
import { z } from 'zod';

export const proberReportKind = 'ProberReport';
export const proberReportPlural = 'proberreports';

/** Most backends one report covers, and most failing addresses it lists for one backend. */
export const maxReportBackends = 10_000;
export const maxReportFailures = 5000;

/**
 * The longest a report counts after it was last seen to change, whatever its lease says: a
 * replica's clock (renewTime) and lease are its own claims, and a compromised one could make its
 * report outlive it.
 */
export const maxReportLeaseMs = 60_000;

export const proberReportSpec = z
  .object({
    nodeName: z
      .string()
      .max(253)
      .describe('The Node the replica runs on (from its pod).')
      .optional(),
    zone: z
      .string()
      .max(63)
      .describe('The zone of that Node (its topology.kubernetes.io/zone label), when it has one.')
      .optional(),
    renewTime: z
      .string()
      .meta({ format: 'date-time' })
      .describe(
        'When the replica last confirmed this report; it expires leaseDurationSeconds later.',
      ),
    leaseDurationSeconds: z
      .int()
      .min(1)
      .max(3600)
      .describe('How long after renewTime the report still counts.'),
    backends: z
      .array(
        z.object({
          name: z.string().max(317).describe('The ExternalBackend, as "<namespace>/<name>".'),
          unhealthy: z
            .array(z.string().max(45))
            .max(maxReportFailures)
            .describe(
              'The addresses of that backend this replica sees unhealthy; every other one it sees healthy (or has not checked yet).',
            )
            .optional(),
        }),
      )
      .max(maxReportBackends)
      .describe('The backends this replica checks, each with the addresses it sees fail.')
      .default([])
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
  })
  .describe("One replica's view of the ExternalBackends it checks.");

export const proberReportStatus = z
  .object({
    partitioned: z
      .boolean()
      .describe(
        "Set by the leader: this replica sees failures the others do not, across much of what it checks, so its view is left out of every decision (it still shows in the backends' status).",
      )
      .optional(),
    message: z.string().max(4096).describe('Why, in words.').optional(),
  })
  .describe('What the leader made of the report.');

export type ProberReportSpec = z.output<typeof proberReportSpec>;
export type ProberReportStatus = z.output<typeof proberReportStatus>;
