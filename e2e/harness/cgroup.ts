// A memory cgroup (v1, as on this machine) with a limit, for running a process the way a kubelet
// runs a container under `resources.limits.memory`: Node reads the limit from its own cgroup at
// start (process.constrainedMemory()) and sizes V8's heap from it, so a process started outside
// one behaves as it never would in a pod.
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const root = '/sys/fs/cgroup/memory';

export interface MemoryCgroup {
  readonly dir: string;
  /** The command line that starts `argv` inside the cgroup: the shell joins it, then execs. */
  wrap(argv: readonly string[]): string[];
  /** What the kernel charged: now, at the peak, and how often the limit was hit. */
  stats(): { usageMiB: number; peakMiB: number; failcnt: number; oomKills: number };
  remove(): void;
}

/** Parses a Kubernetes memory quantity (binary and decimal suffixes, or plain bytes). */
export function quantityBytes(q: string): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q.trim());
  if (m === null) throw new Error(`not a memory quantity: ${q}`);
  const scale: Record<string, number> = {
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Math.round(Number(m[1]) * (scale[m[2] ?? ''] ?? 1));
}

export function memoryCgroupUnavailable(): string | undefined {
  if (!existsSync(join(root, 'memory.limit_in_bytes')))
    return `no cgroup v1 memory controller at ${root}`;
  if (process.getuid?.() !== 0) return 'creating a cgroup needs root';
  return undefined;
}

export function createMemoryCgroup(name: string, limitBytes: number): MemoryCgroup {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'memory.limit_in_bytes'), String(limitBytes));
  const num = (file: string): number => {
    try {
      return Number(readFileSync(join(dir, file), 'utf8').trim());
    } catch {
      return NaN;
    }
  };
  return {
    dir,
    wrap: (argv) => [
      '/bin/sh',
      '-c',
      `echo $$ > ${join(dir, 'cgroup.procs')} && exec "$@"`,
      'sh',
      ...argv,
    ],
    stats() {
      let oomKills = NaN;
      try {
        const text = readFileSync(join(dir, 'memory.oom_control'), 'utf8');
        oomKills = Number(/^oom_kill (\d+)$/m.exec(text)?.[1] ?? NaN);
      } catch {
        // Older kernels do not count OOM kills here.
      }
      return {
        usageMiB: num('memory.usage_in_bytes') / 2 ** 20,
        peakMiB: num('memory.max_usage_in_bytes') / 2 ** 20,
        failcnt: num('memory.failcnt'),
        oomKills,
      };
    },
    remove() {
      // The kernel refuses while a process is still in it; the caller stops the process first.
      try {
        rmdirSync(dir);
      } catch {
        // Left behind for the next run's mkdir to reuse.
      }
    },
  };
}
