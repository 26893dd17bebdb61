// docs/results/faults.md, written by the fault suite when OUTRIGGER_RESULTS_OUT names a directory
// (`npm run results -- --only=faults` sets it): the table of one run with the commit it measured,
// so that the page is never edited by hand.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Provenance } from '../harness/provenance.ts';

export interface FaultRow {
  readonly fault: string;
  readonly runs: number;
  readonly convergeMs: number;
  readonly writes: number;
  readonly restarts: number;
  readonly lost: number;
  readonly foreign: number;
  readonly note: string;
}

export function faultsTable(rows: readonly FaultRow[]): string {
  return [
    '| fault | runs | converge (ms) | writes | restarts | lost | foreign touched | note |',
    '|---|--:|--:|--:|--:|--:|--:|---|',
    ...rows.map(
      (r) =>
        `| ${r.fault} | ${String(r.runs)} | ${String(r.convergeMs)} | ${String(r.writes)} | ${String(r.restarts)} | ${String(r.lost)} | ${String(r.foreign)} | ${r.note} |`,
    ),
  ].join('\n');
}

export function writeFaultsPage(
  dir: string,
  rows: readonly FaultRow[],
  run: {
    readonly full: boolean;
    readonly provenance: Provenance;
    readonly setup: string;
    /** What else ran on the machine meanwhile. */
    readonly note?: string | undefined;
  },
): string {
  const converge = rows.map((r) => r.convergeMs);
  const page = `# Fault matrix: ${run.full ? 'full' : 'short'} run

Written by \`npm run results -- --only=faults\` (\`${run.full ? 'npm run test:faults' : 'the fault suite'}\`) on ${run.provenance.date.slice(0, 10)}, commit ${run.provenance.commit} (${run.provenance.machine}; kube-apiserver and etcd on loopback).${run.note ? ` ${run.note}` : ''} ${run.setup}

- **converge**: from the end of the fault (and of the churn) until every Endpoints, EndpointSlice
  and ExternalBackend status equals the state computed from scratch, steadily for one second.
- **writes**: writes of outrigger's that reached the API server during the fault and the recovery
  (Leases and Events not counted), through the recording proxy in front of each replica.
- **restarts**: outrigger processes that exited (or were killed) and were started again.
- **lost**: objects that did not converge; **foreign touched**: objects planted for others whose
  resourceVersion changed. Both must be 0; the run fails otherwise. Where two processes wrote,
  the run also fails if their writes overlapped in time or a process wrote after handing over.

${faultsTable(rows)}

${String(rows.length)} faults; converge ${String(Math.min(...converge))}–${String(Math.max(...converge))} ms; lost ${String(rows.reduce((a, r) => a + r.lost, 0))}; foreign objects touched ${String(rows.reduce((a, r) => a + r.foreign, 0))}.
`;
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'faults.md');
  writeFileSync(file, page);
  return file;
}
