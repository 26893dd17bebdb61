// Holds a measured figure to the claim the docs make about it (e2e/claims.ts) and records it.
//
// Throws rather than using jest's expect: the harness is imported by the demo and the benchmarks,
// where jest's globals do not exist. A thrown Error fails the test just the same.
import { appendFileSync } from 'node:fs';
import { claims, type ClaimId } from '../claims.ts';

/** The file the e2e summary reporter reads the run's figures from (JSON lines). */
export const figuresEnv = 'OUTRIGGER_FIGURES';

/** One measurement, with its claim copied in so that readers need not load the registry. */
export interface Figure {
  readonly id: ClaimId;
  readonly measured: number;
  readonly unit: string;
  readonly stated: number;
  readonly bound: number;
  readonly test: string;
  readonly at: string;
  readonly note?: string;
}

export function claim(id: ClaimId, measured: number, note?: string): void {
  const c = claims[id];
  const within = measured <= c.bound;
  const file = process.env[figuresEnv];
  if (file !== undefined && file !== '') {
    const f: Figure = {
      id,
      measured,
      unit: c.unit,
      stated: c.stated,
      bound: c.bound,
      test: c.test,
      at: new Date().toISOString(),
      ...(note ? { note } : {}),
    };
    appendFileSync(file, `${JSON.stringify(f)}\n`);
  }
  const line = `${id}: measured ${String(measured)} ${c.unit}${note ? ` (${note})` : ''}; ${c.doc} says “${c.says}”; bound ${String(c.bound)} ${c.unit}`;
  console.log(line);
  if (!within)
    throw new Error(
      `${line}: the measurement breaks the claim. The bound: ${c.why}. Either the code got slower or the doc must change (e2e/claims.ts).`,
    );
}
