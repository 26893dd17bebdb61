import { describe, expect, it } from '@jest/globals';
import { decide, observe, type LeaseRecord, type Observation } from './leaderelection.ts';

const lease = (holder: string, renewedAt: number, transitions = 0): LeaseRecord => ({
  holderIdentity: holder,
  leaseDurationSeconds: 15,
  leaseTransitions: transitions,
  renewTime: new Date(renewedAt),
});
const seen = (record: LeaseRecord | undefined, at: number): Observation => ({
  record,
  observedAt: at,
});

describe('decide', () => {
  it('creates the lease when there is none', () => {
    const d = decide(undefined, seen(undefined, 0), 'me', 15_000, 1000);
    expect(d).toMatchObject({
      action: 'create',
      record: { holderIdentity: 'me', leaseDurationSeconds: 15, leaseTransitions: 0 },
    });
  });

  it('renews its own lease, keeping the transition count', () => {
    const cur = lease('me', 0, 4);
    const d = decide(cur, seen(cur, 0), 'me', 15_000, 2000);
    expect(d).toMatchObject({
      action: 'update',
      record: { holderIdentity: 'me', leaseTransitions: 4 },
    });
    expect(d.action === 'update' && d.record.renewTime?.getTime()).toBe(2000);
  });

  it('waits while another holder renewed within the lease duration, by the local clock', () => {
    // The holder's renewTime is from a skewed clock far in the past; only observation time counts.
    const cur = lease('other', -1e9);
    expect(decide(cur, seen(cur, 10_000), 'me', 15_000, 24_000)).toEqual({
      action: 'wait',
      holder: 'other',
    });
  });

  it('takes over an expired lease and counts the transition', () => {
    const cur = lease('other', 0, 2);
    expect(decide(cur, seen(cur, 10_000), 'me', 15_000, 25_001)).toMatchObject({
      action: 'update',
      record: { holderIdentity: 'me', leaseTransitions: 3 },
    });
  });

  it('takes a released lease (empty holder) at once', () => {
    const cur = { ...lease('', 0, 1), leaseDurationSeconds: 1 };
    expect(decide(cur, seen(cur, 5000), 'me', 15_000, 5001)).toMatchObject({ action: 'update' });
  });
});

describe('observe', () => {
  it('moves the observation time only when the record changes', () => {
    const a = lease('other', 1000);
    const first = observe(seen(undefined, 0), a, 5000);
    expect(first.observedAt).toBe(5000);
    expect(observe(first, { ...a }, 9000).observedAt).toBe(5000);
    expect(observe(first, lease('other', 2000), 9000).observedAt).toBe(9000);
  });
});
