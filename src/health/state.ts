import { isCertificateTime } from './kinds/kind.ts';

/**
 * Per-address health with rise/fall thresholds. An address starts Unknown and counts as ready until
 * probed, so that an operator restart never empties a Service while the first probes run. Its first
 * success makes it Healthy at once; from Unknown or Healthy, `unhealthyThreshold` consecutive
 * failures make it Unhealthy, and `healthyThreshold` consecutive successes make it Healthy again.
 */
export type HealthState = 'Unknown' | 'Healthy' | 'Unhealthy';

export interface AddressHealth {
  readonly state: HealthState;
  readonly successes: number;
  readonly failures: number;
  /** When `state` last changed (ms since epoch). */
  readonly since: number;
  /** Last probe error, for status messages. */
  readonly message: string;
  /**
   * The notAfter (ms since epoch) of the certificate the probes saw last; unset until one saw a
   * certificate. A probe that fails before the handshake keeps the last one: the server's
   * certificate has not changed because a connection was refused, and dropping it would make the
   * expiry (and status) flap with every failure.
   */
  readonly certificateNotAfter?: number;
}

export interface Thresholds {
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
}

export function initialHealth(now: number, state: HealthState = 'Unknown'): AddressHealth {
  return { state, successes: 0, failures: 0, since: now, message: '' };
}

export function isReady(h: AddressHealth): boolean {
  return h.state !== 'Unhealthy';
}

/** The state after one probe result (pure). */
export function observe(
  h: AddressHealth,
  ok: boolean,
  t: Thresholds,
  now: number,
  message = '',
  certificateNotAfter?: number,
): AddressHealth {
  const successes = ok ? h.successes + 1 : 0;
  const failures = ok ? 0 : h.failures + 1;
  let state: HealthState = h.state;
  if (h.state === 'Unknown')
    state = ok ? 'Healthy' : failures >= t.unhealthyThreshold ? 'Unhealthy' : 'Unknown';
  else if (h.state === 'Healthy' && failures >= t.unhealthyThreshold) state = 'Unhealthy';
  else if (h.state === 'Unhealthy' && successes >= t.healthyThreshold) state = 'Healthy';
  return {
    state,
    successes,
    failures,
    since: state === h.state ? h.since : now,
    message: ok ? '' : message,
    ...(isCertificateTime(certificateNotAfter)
      ? { certificateNotAfter }
      : h.certificateNotAfter !== undefined
        ? { certificateNotAfter: h.certificateNotAfter }
        : {}),
  };
}
