// Where a figure came from: the date, the commit it measured (with "+dirty" when the work tree
// differed from it) and the machine. Every results file carries these, so a page quoting a figure
// can say which code it describes and a stale page shows itself.
import { execFileSync } from 'node:child_process';
import { cpus, release, totalmem } from 'node:os';

export interface Provenance {
  readonly date: string;
  readonly commit: string;
  readonly machine: string;
}

export function commit(): string {
  try {
    const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty =
      execFileSync(
        'git',
        ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'e2e', 'charts', 'crds'],
        {
          encoding: 'utf8',
        },
      ).trim() !== '';
    return dirty ? `${head}+dirty` : head;
  } catch {
    return 'unknown';
  }
}

export function machine(node = `Node ${process.version}`): string {
  const cpu = cpus();
  return `${String(cpu.length)} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${String(Math.round(totalmem() / 2 ** 30))} GiB, Linux ${release()}, ${node}`;
}

export function provenance(node?: string): Provenance {
  return { date: new Date().toISOString(), commit: commit(), machine: machine(node) };
}
