import { createServer, type AddressInfo, type Server } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, describe, expect, it } from '@jest/globals';
import { DenyList } from '../net/denylist.ts';
import { ProbeScheduler } from './scheduler.ts';

let server: Server | undefined;
let scheduler: ProbeScheduler | undefined;

afterEach(async () => {
  await scheduler?.stop();
  server?.close();
});

async function until(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

async function listen(port = 0): Promise<number> {
  server = createServer((s) => s.end());
  await new Promise<void>((r) => server?.listen(port, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

describe('ProbeScheduler', () => {
  it('moves a target to Unhealthy after the threshold and back after recovery, reporting transitions', async () => {
    const port = await listen();
    const transitions: string[] = [];
    scheduler = new ProbeScheduler({
      denyList: new DenyList([]),
      concurrency: 4,
      onResult: (_k, h, _r, changed) => {
        // The counters at the moment of the change show the thresholds at work.
        if (changed)
          transitions.push(
            `${h.state} after ${h.state === 'Unhealthy' ? h.failures : h.successes}`,
          );
      },
    });
    const target = {
      key: 'ns/xb/127.0.0.1',
      tenant: ['ns', 'xb'] as const,
      spec: { kind: 'tcp', ip: '127.0.0.1', port } as const,
      intervalMs: 50,
      timeoutMs: 40,
      thresholds: { healthyThreshold: 2, unhealthyThreshold: 3 },
    };
    scheduler.upsert(target);
    await until('healthy', () => transitions.length === 1);
    server?.close();
    await until('unhealthy', () => transitions.length === 2);
    await listen(port);
    await until('healthy again', () => transitions.length === 3);
    expect(transitions).toEqual(['Healthy after 1', 'Unhealthy after 3', 'Healthy after 2']);
  });

  it('keeps health across an unchanged upsert and forgets removed targets', async () => {
    const port = await listen();
    scheduler = new ProbeScheduler({
      denyList: new DenyList([]),
      concurrency: 1,
      onResult: () => undefined,
    });
    const target = {
      key: 'k',
      tenant: ['ns', 'xb'] as const,
      spec: { kind: 'tcp', ip: '127.0.0.1', port } as const,
      intervalMs: 30,
      timeoutMs: 20,
      thresholds: { healthyThreshold: 1, unhealthyThreshold: 1 },
    };
    scheduler.upsert(target);
    await until('healthy', () => scheduler?.health('k')?.state === 'Healthy');
    scheduler.upsert({ ...target });
    expect(scheduler.health('k')?.state).toBe('Healthy');
    scheduler.retain(new Set());
    expect(scheduler.keys()).toEqual([]);
  });

  it("keeps the certificate expiry the probes saw in the address's health, and reports a new one as a change", async () => {
    const notAfter = Date.UTC(2030, 0, 1);
    const script = [notAfter, notAfter + 1000, undefined];
    let n = 0;
    const seen: (number | undefined)[] = [];
    const changes: boolean[] = [];
    scheduler = new ProbeScheduler({
      denyList: new DenyList([]),
      concurrency: 1,
      onResult: (_t, h, _r, changed) => {
        seen.push(h.certificateNotAfter);
        changes.push(changed);
      },
      probe: () => {
        const cert = script[Math.min(n++, script.length - 1)];
        return Promise.resolve({
          ok: true,
          seconds: 0,
          message: '',
          ...(cert !== undefined ? { certificateNotAfter: cert } : {}),
        });
      },
    });
    scheduler.upsert({
      key: 'k',
      tenant: ['ns', 'xb'] as const,
      spec: { kind: 'tls', ip: '192.0.2.1', port: 443, tls: {} } as const,
      intervalMs: 10,
      timeoutMs: 10,
      thresholds: { healthyThreshold: 1, unhealthyThreshold: 1 },
    });
    await until('three probes', () => seen.length >= 3);
    // The third probe saw no certificate: the last one seen stays, and nothing changed.
    expect(seen.slice(0, 3)).toEqual([notAfter, notAfter + 1000, notAfter + 1000]);
    // The first turned Unknown into Healthy; the second saw another certificate.
    expect(changes.slice(0, 3)).toEqual([true, true, false]);
    // Redefined (another port), the target keeps its state but forgets the certificate.
    scheduler.upsert({
      key: 'k',
      tenant: ['ns', 'xb'] as const,
      spec: { kind: 'tls', ip: '192.0.2.1', port: 8443, tls: {} } as const,
      intervalMs: 60_000,
      timeoutMs: 10,
      thresholds: { healthyThreshold: 1, unhealthyThreshold: 1 },
    });
    expect(scheduler.health('k')).toMatchObject({ state: 'Healthy' });
    expect(scheduler.health('k')).not.toHaveProperty('certificateNotAfter');
  });

  it('never runs more probes at once than its concurrency', async () => {
    let active = 0;
    let max = 0;
    server = createServer((s) => {
      active++;
      max = Math.max(max, active);
      setTimeout(() => {
        active--;
        s.end();
      }, 30);
    });
    await new Promise<void>((r) => server?.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    scheduler = new ProbeScheduler({
      denyList: new DenyList([]),
      concurrency: 2,
      onResult: () => undefined,
    });
    // A TCP probe succeeds on connect; count connections the server sees at once instead.
    for (let i = 0; i < 10; i++) {
      scheduler.upsert({
        key: `k${i}`,
        tenant: ['ns', 'xb'] as const,
        spec: {
          kind: 'http',
          ip: '127.0.0.1',
          port,
          path: '/',
          scheme: 'HTTP',
          method: 'GET',
          expectedStatuses: ['200-599'],
          headers: [],
        },
        intervalMs: 20,
        timeoutMs: 100,
        thresholds: { healthyThreshold: 1, unhealthyThreshold: 1 },
      });
    }
    await until('probes to run', () => max > 0);
    await delay(300);
    expect(max).toBeLessThanOrEqual(2);
  });
});
