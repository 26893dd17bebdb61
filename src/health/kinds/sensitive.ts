// A value a probe sends but nobody may read back: a request header's value (often a token from a
// Secret). Probe specs travel far (the scheduler compares them as JSON, the controller may log a
// target, a test may print one), so the value hides from every way of turning an object into text.
import { createHmac, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';

// Per process, so that a fingerprint tells two values apart without being a stable hash of a
// short secret that could be guessed offline from a log.
const fingerprintKey = randomBytes(32);

export class Sensitive {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The value itself, for the one place that writes it to a socket. */
  reveal(): string {
    return this.#value;
  }

  /**
   * A fingerprint instead of the value: the scheduler compares target definitions as JSON, and a
   * changed Secret must still redefine the probe.
   */
  toJSON(): string {
    const digest = createHmac('sha256', fingerprintKey).update(this.#value).digest('hex');
    return `[redacted ${digest.slice(0, 16)}]`;
  }

  toString(): string {
    return '[redacted]';
  }

  [inspect.custom](): string {
    return '[redacted]';
  }
}

/**
 * `text` with every occurrence of the values replaced: a last guard on failure messages, which
 * quote what sockets and servers said. Values shorter than 4 characters are left alone (they
 * would mangle any message and protect nothing).
 */
export function redact(text: string, values: readonly Sensitive[]): string {
  let out = text;
  for (const v of values) {
    const s = v.reveal();
    if (s.length >= 4) out = out.split(s).join('[redacted]');
  }
  return out;
}
