import { afterEach, describe, expect, it } from '@jest/globals';
import { FakeClock, settle } from '../runtime/clock.test-helpers.ts';
import { DenyList } from '../net/denylist.ts';
import { currentConcern, withConcern } from '../runtime/errors.ts';
import type { ProbeResult } from './probe.ts';
import { ProbeScheduler, type Target } from './scheduler.ts';

// The schedule runs on a fake clock and the probes are scripted: what these tests prove is when
// the scheduler probes and what it makes of the answers, whatever the machine's load. The real
// probes are tested in probe.test.ts.

let scheduler: ProbeScheduler | undefined;

afterEach(async () => {
  await scheduler?.stop();
  scheduler = undefined;
});

const ok = (extra: Partial<ProbeResult> = {}): ProbeResult => ({
  ok: true,
  seconds: 0,
  message: '',
  ...extra,
});

function target(key: string, extra: Partial<Target> = {}): Target {
  return {
    key,
    tenant: ['ns', 'xb'],
    spec: { kind: 'tcp', ip: '192.0.2.1', port: 80 },
    intervalMs: 100,
    timeoutMs: 50,
    thresholds: { healthyThreshold: 1, unhealthyThreshold: 1 },
    ...extra,
  };
}

describe('ProbeScheduler', () => {
  it('moves a target to Unhealthy after the threshold and back after recovery, reporting transitions', async () => {
    const clock = new FakeClock(0);
    let up = true;
    const transitions: string[] = [];
    scheduler = new ProbeScheduler({
      denyList: new DenyList([]),
      concurrency: 4,
      clock,
      // No jitter: the first probe half-way through the first interval, then one per interval.
      random: () => 0.5,
      probe: () => Promise.resolve(up ? ok() : { ok: false, seconds: 0, message: 'refused' }),
      onResult: (_k, h, _r, changed) => {
        // The counters at the moment of the change show the thresholds at work.
        if (changed)
          transitions.push(
            `${h.state} after ${String(h.state === 'Unhealthy' ? h.failures : h.successes)} at ${String(clock.now())}`,
          );
      },
    });
    scheduler.upsert(
      target('ns/xb/192.0.2.1', { thresholds: { healthyThreshold: 2, unhealthyThreshold: 3 } }),
    );
    await clock.advance(50);
    expect(transitions).toEqual(['Healthy after 1 at 50']);
    up = false;
    // Probes at 150 and 250 fail without a change; the third, at 350, crosses the threshold.
    await clock.advance(299);
    expect(transitions).toHaveLength(1);
    await clock.advance(1);
    up = true;
    await clock.advance(200);
    expect(transitions).toEqual([
      'Healthy after 1 at 50',
      'Unhealthy after 3 at 350',
      'Healthy after 2 at 550',
    ]);
  });

  it('spreads first probes over the interval and jitters the next by ±10 %', async () => {
    const clock = new FakeClock(0);
    const rolls = [0, 0, 1, 0.5];
    const at: number[] = [];
    scheduler = new ProbeScheduler({
      denyList: new DenyList([]),
      concurrency: 1,
      clock,
      random: () => rolls.shift() ?? 0.5,
      probe: () => {
        at.push(clock.now());
        return Promise.resolve(ok());
      },
      onResult: () => undefined,
    });
    scheduler.upsert(target('k'));
    await clock.advance(400);
    // At once (roll 0), then 90 ms (−10 %), 110 ms (+10 %), 100 ms later.
    expect(at).toEqual([0, 90, 200, 300, 400]);
  });

  it('keeps health across an unchanged upsert and forgets removed targets', async () => {
    const clock = new FakeClock(0);
    let probes = 0;
    scheduler = new ProbeScheduler({
      denyList: new DenyList([]),
      concurrency: 1,
      clock,
      random: () => 0.5,
      probe: () => {
        probes++;
        return Promise.resolve(ok());
      },
      onResult: () => undefined,
    });
    scheduler.upsert(target('k'));
    await clock.advance(50);
    expect(scheduler.health('k')?.state).toBe('Healthy');
    // The same definition again: left running as it is (one timer, no probe now).
    scheduler.upsert(target('k'));
    await settle();
    expect(scheduler.health('k')?.state).toBe('Healthy');
    expect(clock.timers).toBe(1);
    expect(probes).toBe(1);
    scheduler.retain(new Set());
    expect(scheduler.keys()).toEqual([]);
    expect(clock.timers).toBe(0);
    await clock.advance(1000);
    expect(probes).toBe(1);
  });

  it("keeps the certificate expiry the probes saw in the address's health, and reports a new one as a change", async () => {
    const clock = new FakeClock(0);
    const notAfter = Date.UTC(2030, 0, 1);
    const script = [notAfter, notAfter + 1000, undefined];
    let n = 0;
    const seen: (number | undefined)[] = [];
    const changes: boolean[] = [];
    scheduler = new ProbeScheduler({
      denyList: new DenyList([]),
      concurrency: 1,
      clock,
      random: () => 0.5,
      onResult: (_t, h, _r, changed) => {
        seen.push(h.certificateNotAfter);
        changes.push(changed);
      },
      probe: () => {
        const cert = script[Math.min(n++, script.length - 1)];
        return Promise.resolve(ok(cert !== undefined ? { certificateNotAfter: cert } : {}));
      },
    });
    const tls = { kind: 'tls', ip: '192.0.2.1', port: 443, tls: {} } as const;
    scheduler.upsert(target('k', { spec: tls, intervalMs: 10, timeoutMs: 10 }));
    // Probes at 5, 15 and 25 ms.
    await clock.advance(25);
    // The third probe saw no certificate: the last one seen stays, and nothing changed.
    expect(seen).toEqual([notAfter, notAfter + 1000, notAfter + 1000]);
    // The first turned Unknown into Healthy; the second saw another certificate.
    expect(changes).toEqual([true, true, false]);
    // Redefined (another port), the target keeps its state but forgets the certificate.
    scheduler.upsert(
      target('k', { spec: { ...tls, port: 8443 }, intervalMs: 60_000, timeoutMs: 10 }),
    );
    expect(scheduler.health('k')).toMatchObject({ state: 'Healthy' });
    expect(scheduler.health('k')).not.toHaveProperty('certificateNotAfter');
  });

  it('never runs more probes at once than its concurrency, and reports the wait for a slot as lag', async () => {
    const clock = new FakeClock(0);
    let active = 0;
    let max = 0;
    const release: (() => void)[] = [];
    const lags: number[] = [];
    scheduler = new ProbeScheduler({
      denyList: new DenyList([]),
      concurrency: 2,
      clock,
      random: () => 0.5,
      onLag: (s) => lags.push(s),
      onResult: () => undefined,
      probe: () => {
        active++;
        max = Math.max(max, active);
        return new Promise((resolve) =>
          release.push(() => {
            active--;
            resolve(ok());
          }),
        );
      },
    });
    // Ten namespaces (one namespace may hold only half the pool), all due at 500 ms; two slots.
    for (let i = 0; i < 10; i++)
      scheduler.upsert(
        target(`k${String(i)}`, { tenant: [`ns${String(i)}`, 'xb'], intervalMs: 1000 }),
      );
    await clock.advance(500);
    expect(active).toBe(2);
    // Each probe that finishes, 5 ms later, lets one waiting probe start.
    for (let i = 0; i < 8; i++) {
      await clock.advance(5);
      release.shift()?.();
      await settle();
      expect(active).toBe(2);
    }
    expect(max).toBe(2);
    // How long each waited for its slot.
    expect(lags).toEqual([0, 0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.035, 0.04]);
    for (const r of release.splice(0)) r();
  });

  it("runs each probe as its own address's work, also one started by another's finishing", async () => {
    const clock = new FakeClock(0);
    const seen: string[] = [];
    const release: (() => void)[] = [];
    scheduler = new ProbeScheduler({
      denyList: new DenyList([]),
      concurrency: 1,
      clock,
      random: () => 0.5,
      onResult: () => undefined,
      probe: async (spec) => {
        seen.push(`${spec.ip} in ${currentConcern()?.probe ?? 'none'}`);
        await new Promise<void>((resolve) => release.push(resolve));
        // What the probe's own callbacks see, once its socket answers.
        seen.push(`${spec.ip} after in ${currentConcern()?.probe ?? 'none'}`);
        return ok();
      },
    });
    // Added from inside a reconcile's concern, which the probes must not inherit.
    withConcern({ controller: 'externalbackend', object: 'ns/xb' }, () => {
      scheduler?.upsert(
        target('a', { tenant: ['ns1', 'xb'], spec: { kind: 'tcp', ip: '10.0.0.1', port: 80 } }),
      );
      scheduler?.upsert(
        target('b', { tenant: ['ns2', 'xb'], spec: { kind: 'tcp', ip: '10.0.0.2', port: 80 } }),
      );
    });
    await clock.advance(50);
    // One slot: b waits for a, and starts when a's probe finishes.
    release.shift()?.();
    await settle();
    release.shift()?.();
    await settle();
    expect(seen).toEqual([
      '10.0.0.1 in a',
      '10.0.0.1 after in a',
      '10.0.0.2 in b',
      '10.0.0.2 after in b',
    ]);
  });
});
