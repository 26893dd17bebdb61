// Runs one probe of any kind (src/health/kinds/) against one address, after the deny list, and
// turns whatever happens into a result: a probe never rejects.
import type { DenyList, NodeGrant } from '../net/denylist.ts';
import { runProbe, type ProbeOutcome, type ProbeSpec } from './kinds/index.ts';

export type { ProbeSpec } from './kinds/index.ts';

export interface ProbeResult {
  readonly ok: boolean;
  /** Wall time of the attempt in seconds. */
  readonly seconds: number;
  /** Why it failed (or the HTTP status), for status messages and Events. */
  readonly message: string;
  /**
   * The notAfter (ms since epoch) of the leaf certificate the server presented, when the probe
   * got that far into a TLS handshake (verified or not, passed or failed).
   */
  readonly certificateNotAfter?: number;
}

/**
 * Runs one probe. Never rejects, whatever the spec holds: Node's socket and HTTP clients throw
 * synchronously on input they cannot send (a path with a space, a bad port), and a throw here would
 * escape into the scheduler. Any such error is a failed probe with its message. Never sends a packet
 * to a deny-listed address.
 */
export async function probe(
  spec: ProbeSpec,
  timeoutMs: number,
  denyList: Pick<DenyList, 'denies'>,
  nodeGrant?: NodeGrant,
): Promise<ProbeResult> {
  const start = performance.now();
  let outcome: ProbeOutcome;
  try {
    const denied = denyList.denies(spec.ip, nodeGrant);
    if (denied !== undefined)
      return { ok: false, seconds: 0, message: `address is denied: ${denied}` };
    outcome = await runProbe(spec, timeoutMs);
  } catch (e) {
    // Only the code when there is one: a message can quote what was being sent.
    const code = (e as NodeJS.ErrnoException | null)?.code;
    outcome = {
      failure: `cannot send the probe: ${code ?? (e instanceof Error ? e.message : String(e))}`,
    };
  }
  const seconds = (performance.now() - start) / 1000;
  const cert =
    outcome.certificateNotAfter !== undefined
      ? { certificateNotAfter: outcome.certificateNotAfter }
      : {};
  return outcome.failure === undefined
    ? { ok: true, seconds, message: '', ...cert }
    : { ok: false, seconds, message: outcome.failure, ...cert };
}
