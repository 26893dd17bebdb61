import { describe, expect, it } from '@jest/globals';
import {
  certificateCondition,
  certificateEvent,
  nextCertificateCheckMs,
  soonestExpiry,
} from './certificates.ts';
import type { AddressView } from './addresses.ts';
import { planStatus } from './status.ts';

const day = 86_400_000;
const now = Date.UTC(2026, 11, 2);
const warn = 14 * day;

const view = (
  ip: string,
  certificateNotAfter?: number,
  o: Partial<AddressView> = {},
): AddressView => ({
  ip,
  state: 'Healthy',
  ready: true,
  message: '',
  ...(certificateNotAfter !== undefined ? { certificateNotAfter } : {}),
  ...o,
});

describe('certificate expiry', () => {
  it('does not apply until a probe has seen a certificate, and never counts a denied address', () => {
    expect(certificateCondition([view('192.0.2.1')], now, warn)).toBeUndefined();
    expect(
      certificateCondition([view('192.0.2.1', now - day, { state: 'Denied' })], now, warn),
    ).toBeUndefined();
    expect(soonestExpiry([view('192.0.2.1')])).toBeUndefined();
  });

  it('is False beyond the window, True within it, and says which addresses and when', () => {
    const far = [view('192.0.2.2', now + 60 * day), view('192.0.2.1', now + 30 * day)];
    expect(certificateCondition(far, now, warn)).toEqual({
      status: 'False',
      reason: 'CertificatesValid',
      message:
        "the soonest certificate to expire, 192.0.2.1's, is valid until 2027-01-01T00:00:00.000Z, beyond the 336h warning window",
    });
    expect(soonestExpiry(far)).toBe(now + 30 * day);
    const soon = [...far, view('192.0.2.3', now + 2 * day, { dnsName: 'db.example.com' })];
    expect(certificateCondition(soon, now, warn)).toEqual({
      status: 'True',
      reason: 'CertificateExpiresSoon',
      message:
        '1 of 3 certificates expire within 336h: 192.0.2.3 (db.example.com) at 2026-12-04T00:00:00.000Z',
    });
    const expired = [...soon, view('192.0.2.4', now - day)];
    expect(certificateCondition(expired, now, warn)).toMatchObject({
      status: 'True',
      reason: 'CertificateExpired',
      message: expect.stringMatching(
        /^1 of 4 certificates expired; expiring within 336h: 192\.0\.2\.4 at /,
      ) as unknown,
    });
  });

  it('wakes the reconciler when the soonest certificate enters the window, and when it expires', () => {
    expect(nextCertificateCheckMs([view('192.0.2.1', now + 30 * day)], now, warn)).toBe(16 * day);
    expect(nextCertificateCheckMs([view('192.0.2.1', now + 2 * day)], now, warn)).toBe(2 * day);
    expect(nextCertificateCheckMs([view('192.0.2.1', now - day)], now, warn)).toBeUndefined();
    expect(nextCertificateCheckMs([view('192.0.2.1')], now, warn)).toBeUndefined();
  });

  it('makes an Event when the reason changes: Warning into the window, Normal when renewed', () => {
    const valid = certificateCondition([view('192.0.2.1', now + 30 * day)], now, warn);
    const soon = certificateCondition([view('192.0.2.1', now + day)], now, warn);
    expect(certificateEvent(undefined, valid)).toBeUndefined();
    expect(certificateEvent(valid, soon)).toMatchObject({
      type: 'Warning',
      reason: 'CertificateExpiresSoon',
    });
    expect(certificateEvent(soon, soon)).toBeUndefined();
    expect(certificateEvent(soon, valid)).toMatchObject({
      type: 'Normal',
      reason: 'CertificateRenewed',
    });
  });

  it("lands in status: the condition, each address's notAfter, and an Event once", () => {
    const input = {
      generation: 1,
      previous: undefined,
      views: [view('192.0.2.1', now + day)],
      counts: { ready: 1, total: 1 },
      failOpen: false,
      now: new Date(now),
      certificateWarningMs: warn,
    };
    const first = planStatus(input);
    expect(first.status?.addresses?.[0]?.certificateNotAfter).toBe('2026-12-03T00:00:00.000Z');
    expect(
      first.status?.conditions?.find((c) => c.type === 'CertificateExpiringSoon'),
    ).toMatchObject({
      status: 'True',
      reason: 'CertificateExpiresSoon',
      observedGeneration: 1,
      lastTransitionTime: '2026-12-02T00:00:00.000Z',
    });
    expect(first.events.map((e) => e.reason)).toContain('CertificateExpiresSoon');
    // Unchanged: no write, no second Event.
    const again = planStatus({ ...input, previous: first.status });
    expect(again.status).toBeUndefined();
    expect(again.events.map((e) => e.reason)).not.toContain('CertificateExpiresSoon');
    // The check no longer speaks TLS: the condition goes.
    const plain = planStatus({ ...input, previous: first.status, views: [view('192.0.2.1')] });
    expect(plain.status?.conditions?.map((c) => c.type)).toEqual(['Ready']);
  });
});
