// A CA bundle read from a Secret or ConfigMap, checked once and parsed once. A tenant chooses its
// size and its contents, and the same bundle is used by every probe of every address of a check,
// so both costs are paid per distinct bundle: re-parsing a large bundle at each handshake, or
// turning it into text at each reconcile (the scheduler compares probe definitions as JSON), would
// let one namespace stall the event loop that every namespace's probes run on.
import { createHash, X509Certificate } from 'node:crypto';
import { createSecureContext, type SecureContext } from 'node:tls';
import { inspect } from 'node:util';
import { maxProbeSourceValueBytes } from '../../kube/cached.ts';

/**
 * The largest bundle accepted: room for a public-roots bundle (about 220 KiB) and then some; the
 * cache keeps no larger value anyway.
 */
export const maxCaBundleBytes = maxProbeSourceValueBytes;

export class CaBundle {
  readonly digest: string;
  readonly certificates: number;
  readonly #pem: string;
  #context: SecureContext | undefined;

  constructor(pem: string, digest: string, certificates: number) {
    this.#pem = pem;
    this.digest = digest;
    this.certificates = certificates;
  }

  /** The TLS context that trusts exactly these certificates, built on first use. */
  context(): SecureContext {
    this.#context ??= createSecureContext({ ca: this.#pem });
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

function parse(pem: string): CaBundle | { readonly refused: string } {
  if (Buffer.byteLength(pem) > maxCaBundleBytes)
    return { refused: `is larger than ${String(maxCaBundleBytes / 1024)} KiB` };
  let certificates = 0;
  for (const [i, m] of [...pem.matchAll(blockPattern)].entries()) {
    const where = `block ${String(i + 1)}`;
    if (m[1] !== 'CERTIFICATE')
      return { refused: `${where} is a ${m[1] ?? ''}, not a CERTIFICATE` };
    try {
      new X509Certificate(m[0]);
    } catch {
      return { refused: `${where} is not a valid certificate` };
    }
    certificates++;
  }
  if (certificates === 0) return { refused: 'holds no PEM certificate' };
  // A block that never ends would make OpenSSL ignore what follows it, without a word.
  if (pem.split('-----BEGIN ').length - 1 !== certificates)
    return { refused: `block ${String(certificates + 1)} is not a complete PEM block` };
  return new CaBundle(pem, createHash('sha256').update(pem).digest('hex'), certificates);
}

// Parsed bundles by their text. Bounded: a tenant rotating bundles cannot grow it; a bundle pushed
// out is parsed again when next used.
const parsed = new Map<string, CaBundle | { readonly refused: string }>();
const maxParsed = 64;

/** The bundle in `pem`, or why it cannot be used (the message names no certificate content). */
export function readCaBundle(pem: string): CaBundle | { readonly refused: string } {
  const hit = parsed.get(pem);
  if (hit !== undefined) {
    parsed.delete(pem);
    parsed.set(pem, hit);
    return hit;
  }
  const result = parse(pem);
  parsed.set(pem, result);
  for (const oldest of parsed.keys()) {
    if (parsed.size <= maxParsed) break;
    parsed.delete(oldest);
  }
  return result;
}
