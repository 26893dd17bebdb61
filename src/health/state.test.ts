import { describe, expect, it } from '@jest/globals';
import { initialHealth, isReady, observe, type AddressHealth } from './state.ts';

const t = { healthyThreshold: 2, unhealthyThreshold: 3 };

function run(results: boolean[], start: AddressHealth = initialHealth(0)): AddressHealth[] {
  const out: AddressHealth[] = [];
  let h = start;
  results.forEach((ok, i) => {
    h = observe(h, ok, t, i + 1, ok ? '' : 'connection refused');
    out.push(h);
  });
  return out;
}

describe('address health', () => {
  it('is ready while unknown, and the first success makes it healthy', () => {
    expect(isReady(initialHealth(0))).toBe(true);
    expect(run([true]).map((h) => h.state)).toEqual(['Healthy']);
  });

  it('stays unknown, and ready, through failures short of unhealthyThreshold', () => {
    const hs = run([false, false, false]);
    expect(hs.map((h) => h.state)).toEqual(['Unknown', 'Unknown', 'Unhealthy']);
    expect(hs.map(isReady)).toEqual([true, true, false]);
  });

  it('goes unhealthy only after unhealthyThreshold consecutive failures', () => {
    expect(run([true, false, false, true, false, false, false]).map((h) => h.state)).toEqual([
      'Healthy',
      'Healthy',
      'Healthy',
      'Healthy',
      'Healthy',
      'Healthy',
      'Unhealthy',
    ]);
  });

  it('comes back only after healthyThreshold consecutive successes', () => {
    const down = run([false, false, false]).at(-1) ?? initialHealth(0);
    expect(down.state).toBe('Unhealthy');
    expect(down.message).toBe('connection refused');
    expect(run([true, false, true, true], down).map((h) => h.state)).toEqual([
      'Unhealthy',
      'Unhealthy',
      'Unhealthy',
      'Healthy',
    ]);
  });

  it('records when the state changed', () => {
    const hs = run([true, false, false, false]);
    expect(hs.map((h) => h.since)).toEqual([1, 1, 1, 4]);
  });

  it('keeps the certificate expiry the probes saw last, through failures that saw none', () => {
    expect(initialHealth(0)).not.toHaveProperty('certificateNotAfter');
    const seen = observe(initialHealth(0), true, t, 1, '', 1_900_000_000_000);
    expect(seen.certificateNotAfter).toBe(1_900_000_000_000);
    const failedWithCert = observe(seen, false, t, 2, 'TLS: expired', 1_800_000_000_000);
    expect(failedWithCert).toMatchObject({ certificateNotAfter: 1_800_000_000_000 });
    // A refused connection says nothing about the certificate: the last one seen stays.
    expect(observe(failedWithCert, false, t, 3, 'ECONNREFUSED')).toMatchObject({
      certificateNotAfter: 1_800_000_000_000,
    });
  });

  it('ignores a notAfter that status could not show: not a number, or outside years 0000-9999', () => {
    const seen = observe(initialHealth(0), true, t, 1, '', 1_900_000_000_000);
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, 8.64e15, -8.64e15])
      expect(observe(seen, true, t, 2, '', bad).certificateNotAfter).toBe(1_900_000_000_000);
    expect(observe(initialHealth(0), true, t, 1, '', Number.NaN)).not.toHaveProperty(
      'certificateNotAfter',
    );
    const y9999 = Date.parse('9999-12-31T23:59:59Z');
    expect(observe(seen, true, t, 2, '', y9999).certificateNotAfter).toBe(y9999);
    expect(new Date(y9999).toISOString()).toBe('9999-12-31T23:59:59.000Z');
  });
});
