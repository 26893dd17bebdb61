// outrigger as the chart runs it, for the benchmarks: inside a memory cgroup with the chart's
// `resources.limits.memory` (so that Node sizes its heap as in a pod), every GC pause logged
// (--trace-gc) and the inspector on loopback (the live heap after a full GC, CPU profiles).
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { load as loadYaml } from 'js-yaml';
import {
  createMemoryCgroup,
  memoryCgroupUnavailable,
  quantityBytes,
  type MemoryCgroup,
} from '../harness/cgroup.ts';
import { startOperator, type OperatorProcess, type StartOptions } from '../harness/operator.ts';
import { freePort } from '../harness/ports.ts';
import { Inspector } from './inspector.ts';

/** The chart's own memory limit, read from its values. */
export function chartMemoryLimit(): string {
  const values = loadYaml(
    readFileSync(
      fileURLToPath(new URL('../../charts/outrigger/values.yaml', import.meta.url)),
      'utf8',
    ),
  ) as { resources?: { limits?: { memory?: string } } };
  const limit = values.resources?.limits?.memory;
  if (limit === undefined) throw new Error('charts/outrigger/values.yaml sets no memory limit');
  return limit;
}

/** Why outrigger runs without a limit here (no cgroup v1 memory controller, not root), if so. */
export const cgroupWhyNot = memoryCgroupUnavailable();
export const memoryLimit = chartMemoryLimit();

export interface Limited {
  readonly op: OperatorProcess;
  readonly inspector: Inspector;
  readonly cgroup: MemoryCgroup | undefined;
  stop(): Promise<void>;
}

let starts = 0;

export async function startLimited(
  kubeconfig: string,
  args: readonly string[],
  logPath: string,
  o: { readonly main?: string | undefined; readonly nodeArgs?: readonly string[] } = {},
): Promise<Limited> {
  const cgroup =
    cgroupWhyNot === undefined
      ? createMemoryCgroup(
          `outrigger-bench-${String(process.pid)}-${String(starts++)}`,
          quantityBytes(memoryLimit),
        )
      : undefined;
  const port = await freePort();
  const opts: StartOptions = {
    readyTimeoutMs: 600_000,
    nodeArgs: ['--trace-gc', `--inspect=127.0.0.1:${String(port)}`, ...(o.nodeArgs ?? [])],
    ...(cgroup !== undefined ? { wrap: (argv: readonly string[]) => cgroup.wrap(argv) } : {}),
    ...(o.main !== undefined ? { main: o.main } : {}),
  };
  const op = await startOperator(kubeconfig, args, logPath, opts);
  const inspector = await Inspector.connect(port);
  return {
    op,
    inspector,
    cgroup,
    async stop() {
      inspector.close();
      await op.stop();
      cgroup?.remove();
    },
  };
}
