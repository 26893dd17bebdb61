// Traffic from a node namespace (e2e/harness/dataplane.ts) through its kube-proxy: waiting for a
// Service's rules, and connections opened one after another, each with its start and outcome.
import { waitFor } from '../helpers.ts';
import type { Node } from './dataplane.ts';

/**
 * Waits until the node's kube-proxy programs exactly `want` ("ip:port", sorted) for the Service;
 * resolves with the time it saw them.
 */
export async function programmed(
  node: Node,
  namespace: string,
  service: string,
  want: readonly string[],
  what: string,
  timeoutMs = 60_000,
  intervalMs = 100,
): Promise<number> {
  await waitFor(
    what,
    () =>
      Promise.resolve(
        node.programmedEndpoints(namespace, service).join() === want.join() || undefined,
      ),
    timeoutMs,
    intervalMs,
  );
  return Date.now();
}

export interface Attempt {
  /** When it started (ms since the epoch; the node shares this machine's clock). */
  readonly at: number;
  readonly ok: boolean;
}

/**
 * Opens TCP connections from inside the node to host:port, one after another: `count` of them,
 * or, with `seconds`, one every `spacingMs` until that time is up. A refused, reset or timed-out
 * connection is a failure.
 */
export async function connections(
  node: Node,
  host: string,
  port: number,
  o: { count?: number; seconds?: number; spacingMs?: number; timeoutMs?: number },
): Promise<Attempt[]> {
  const script = `
    const net = require('node:net');
    const out = [];
    const end = ${o.seconds === undefined ? 'Infinity' : `Date.now() + ${String(o.seconds * 1000)}`};
    let left = ${String(o.count ?? Number.MAX_SAFE_INTEGER)};
    const one = () => {
      if (left-- <= 0 || Date.now() >= end) { console.log(JSON.stringify(out)); return; }
      const started = Date.now();
      const s = net.connect({ host: ${JSON.stringify(host)}, port: ${String(port)}, timeout: ${String(o.timeoutMs ?? 1000)} });
      let done = false;
      const next = (ok) => {
        if (done) return;
        done = true;
        s.destroy();
        out.push({ at: started, ok });
        setTimeout(one, Math.max(0, ${String(o.spacingMs ?? 0)} - (Date.now() - started)));
      };
      s.once('connect', () => next(true));
      s.once('timeout', () => next(false));
      s.once('error', () => next(false));
    };
    one();`;
  const budgetMs = (o.seconds ?? 0) * 1000 + (o.count ?? 0) * (o.timeoutMs ?? 1000) + 15_000;
  const r = await node.exec(process.execPath, ['-e', script], budgetMs);
  return JSON.parse(r.stdout.trim()) as Attempt[];
}
