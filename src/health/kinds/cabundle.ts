// A CA bundle read from a Secret or ConfigMap, checked and parsed once per version of the object
// that holds it. A tenant chooses its size and its contents, and the same bundle is used by every
// probe of every address of a check: re-parsing a large bundle at each handshake or each address,
// or turning it into text at each reconcile (the scheduler compares probe definitions as JSON),
// would let one namespace stall the event loop that every namespace's probes run on.
import { createHash, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { inspect } from 'node:util';
import { maxProbeSourceValueBytes } from '../../runtime/cached.ts';

/**
 * The largest bundle accepted: room for a public-roots bundle (about 220 KiB) and then some; the
 * cache keeps no larger value anyway.
 */
export const maxCaBundleBytes = maxProbeSourceValueBytes;

export class CaBundle {
  readonly digest: string;
  readonly #certificates: readonly X509Certificate[];
  #context: SecureContext | undefined;

  constructor(certificates: readonly X509Certificate[], digest: string) {
    this.#certificates = certificates;
    this.digest = digest;
  }

  get certificates(): number {
    return this.#certificates.length;
  }

  /**
   * The TLS context that trusts exactly these certificates, built on first use from the parsed
   * certificates rather than the text: OpenSSL skips blocks a pattern would count (indented, or
   * with text on their END line), so what was checked is then exactly what is trusted.
   */
  context(): SecureContext {
    this.#context ??= createSecureContext({ ca: this.#certificates.map((c) => c.toString()) });
    return this.#context;
  }

  /** The digest instead of the certificates: a changed bundle still redefines the probe. */
  toJSON(): string {
    return `[ca bundle sha256:${this.digest.slice(0, 16)}, ${String(this.certificates)} certificates]`;
  }

  [inspect.custom](): string {
    return this.toJSON();
  }
}

// PEM blocks as RFC 7468 writes them; text between blocks is allowed (openssl writes subjects there).
const blockPattern = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** A block's label as a message may quote it: the tenant chose it, so it is kept short. */
const label = (s: string): string => (s.length > 32 ? `${s.slice(0, 32)}…` : s);

/**
 * The bundle in `pem`, or why it cannot be used (the message names no certificate content).
 * Parses every time: callers remember the result per version of the object that holds the text
 * (ProbeRefs.parsed), never keyed by the text itself.
 */
export function readCaBundle(pem: string): CaBundle | { readonly refused: string } {
  if (Buffer.byteLength(pem) > maxCaBundleBytes)
    return { refused: `is larger than ${String(maxCaBundleBytes / 1024)} KiB` };
  const certificates: X509Certificate[] = [];
  for (const [i, m] of [...pem.matchAll(blockPattern)].entries()) {
    const where = `block ${String(i + 1)}`;
    const kind = m[1] ?? '';
    if (kind !== 'CERTIFICATE')
      return { refused: `${where} is a ${label(kind)}, not a CERTIFICATE` };
    try {
      certificates.push(new X509Certificate(m[0]));
    } catch {
      return { refused: `${where} is not a valid certificate` };
    }
  }
  if (certificates.length === 0) return { refused: 'holds no PEM certificate' };
  // A block that never ends would make OpenSSL ignore what follows it, without a word.
  if (pem.split('-----BEGIN ').length - 1 !== certificates.length)
    return { refused: `block ${String(certificates.length + 1)} is not a complete PEM block` };
  return new CaBundle(certificates, createHash('sha256').update(pem).digest('hex'));
}
