// The scenario language of the differential corpus (e2e/differential/scenarios/*.yaml), validated
// with zod so that a typo in a data file fails with a clear message instead of a silent no-op.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadYaml } from '@kubernetes/client-node';
import { z } from 'zod';

const labels = z.record(z.string(), z.string());

export const podSchema = z.strictObject({
  name: z.string(),
  labels: labels.default({ app: 'web' }),
  /** Pod IPs, primary first; empty means "no IP yet". */
  ips: z.array(z.string()).default([]),
  ready: z.boolean().default(true),
  phase: z.enum(['Pending', 'Running', 'Succeeded', 'Failed']).default('Running'),
  node: z.string().default('node-a'),
  ports: z
    .array(
      z.strictObject({
        name: z.string(),
        port: z.number(),
        protocol: z.enum(['TCP', 'UDP', 'SCTP']).default('TCP'),
      }),
    )
    .default([]),
  sidecarPorts: z
    .array(
      z.strictObject({
        name: z.string(),
        port: z.number(),
        restartable: z.boolean().default(true),
      }),
    )
    .default([]),
  hostname: z.string().optional(),
  subdomain: z.string().optional(),
});
export type PodDef = z.infer<typeof podSchema>;

export const serviceSchema = z.strictObject({
  name: z.string(),
  labels: labels.optional(),
  /** A ServiceSpec as kubectl would take it. */
  spec: z.record(z.string(), z.unknown()),
});
export type ServiceDef = z.infer<typeof serviceSchema>;

export const opSchema = z.discriminatedUnion('op', [
  z.strictObject({ op: z.literal('createPod'), pod: podSchema }),
  z.strictObject({
    op: z.literal('createPods'),
    /** `count` pods named <prefix>-<i> with IPs <ipPrefix>.<i/250>.<i%250>. */
    prefix: z.string(),
    count: z.number().int().positive(),
    ipPrefix: z.string(),
    ready: z.boolean().default(true),
    labels: labels.default({ app: 'web' }),
    ports: podSchema.shape.ports,
  }),
  z.strictObject({ op: z.literal('ready'), pod: z.string(), ready: z.boolean() }),
  z.strictObject({
    op: z.literal('phase'),
    pod: z.string(),
    phase: podSchema.shape.phase.unwrap(),
  }),
  z.strictObject({ op: z.literal('ips'), pod: z.string(), ips: z.array(z.string()) }),
  z.strictObject({ op: z.literal('labels'), pod: z.string(), labels }),
  z.strictObject({ op: z.literal('deletePod'), pod: z.string() }),
  /** Deletion with a finalizer: the pod stays, with a deletionTimestamp, as while terminating. */
  z.strictObject({ op: z.literal('terminatePod'), pod: z.string() }),
  z.strictObject({ op: z.literal('createService'), service: serviceSchema }),
  /** JSON merge patch of the Service's spec (null removes a field) and optionally its labels. */
  z.strictObject({
    op: z.literal('patchService'),
    name: z.string(),
    spec: z.record(z.string(), z.unknown()).optional(),
    labels: z.record(z.string(), z.string().nullable()).optional(),
  }),
  z.strictObject({ op: z.literal('deleteService'), name: z.string() }),
  /** Delete the Endpoints object itself (a controller recreates it). */
  z.strictObject({ op: z.literal('deleteEndpoints'), name: z.string() }),
]);
export type Op = z.infer<typeof opSchema>;

export const scenarioSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    .max(50),
  description: z.string(),
  pods: z.array(podSchema).default([]),
  services: z.array(serviceSchema).default([]),
  steps: z.array(z.strictObject({ desc: z.string(), ops: z.array(opSchema).min(1) })).default([]),
  /** Endpoints to compare; default: every Service named in the scenario. */
  compare: z.array(z.string()).optional(),
  /**
   * Set (with the reason) where upstream's own trigger-time presence is a race: after a burst its
   * last write may be a stale-cache retry, which upstream sends without a trigger time. The format
   * of a trigger time that is present is still checked.
   */
  ignoreTriggerTimePresence: z.string().min(10).optional(),
});
export type Scenario = z.infer<typeof scenarioSchema>;

const dir = fileURLToPath(new URL('scenarios/', import.meta.url));

/** Every scenario of the corpus, in file then document order. Throws on a bad file. */
export function loadCorpus(): Scenario[] {
  const out: Scenario[] = [];
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()) {
    const raw = loadYaml<unknown>(readFileSync(join(dir, file), 'utf8'));
    const parsed = z.array(scenarioSchema).safeParse(raw);
    if (!parsed.success) throw new Error(`${file}: ${z.prettifyError(parsed.error)}`);
    out.push(...parsed.data);
  }
  const names = new Set<string>();
  for (const s of out) {
    if (names.has(s.name)) throw new Error(`duplicate scenario name ${s.name}`);
    names.add(s.name);
  }
  return out;
}

/** Names of the Services whose Endpoints a scenario compares. */
export function comparedServices(s: Scenario): string[] {
  if (s.compare) return s.compare;
  const names = new Set(s.services.map((x) => x.name));
  for (const step of s.steps)
    for (const op of step.ops) if (op.op === 'createService') names.add(op.service.name);
  return [...names];
}
