// What the kinds' tests share: throwaway certificates (e2e/harness/pki.ts makes them), refs from a
// map, and waiting for what a server sees.
import { readFileSync } from 'node:fs';

export { makeCa, makeLeaf, type Ca, type Leaf } from '../../../e2e/harness/pki.ts';

/** Refs that read from a plain map keyed "Secret/name/key" or "ConfigMap/name/key". */
export function refsOf(entries: Record<string, string>): {
  read(ref: { kind: string; name: string; key: string }): string | undefined;
} {
  return { read: (r) => entries[`${r.kind}/${r.name}/${r.key}`] };
}

/** Waits until `cond` holds: a server learns of a connection after the client is done with it. */
export async function until(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Established TCP connections (either end) whose remote port is one of `ports`, from /proc. */
export function establishedTo(ports: readonly number[]): number {
  let n = 0;
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, , remote, state] = line.trim().split(/\s+/);
      const port = Number.parseInt(remote?.split(':')[1] ?? '', 16);
      if (state === '01' && ports.includes(port)) n++;
    }
  }
  return n;
}
