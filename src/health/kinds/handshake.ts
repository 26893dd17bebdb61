// The TLS handshake every TLS-speaking kind runs (tls, http with HTTPS, grpc with tls): one place
// that decides what is verified and reads the certificate's expiry.
//
// Node is always told not to reject (rejectUnauthorized: false) and the verdict is taken here, on
// 'secureConnect', from socket.authorized: a rejecting handshake would close the socket before the
// certificate could be read, and the expiry is reported whether or not it is verified. Nothing is
// written to the socket before the verdict, so a header from a Secret never reaches a server that
// failed verification.
import { X509Certificate } from 'node:crypto';
import type { Socket } from 'node:net';
import { checkServerIdentity, connect, type TLSSocket } from 'node:tls';
import { isCertificateTime } from './kind.ts';
import type { TlsSettings } from './options.ts';

export interface Handshake {
  /** Why the handshake or the verification failed. */
  readonly failure?: string;
  /** The leaf certificate's notAfter (ms since epoch), when the server presented one. */
  readonly certificateNotAfter?: number;
}

function leafNotAfter(socket: TLSSocket): number | undefined {
  const cert = socket.getPeerCertificate();
  // An empty object when the server presented none.
  if (!Buffer.isBuffer(cert.raw)) return undefined;
  let t: number;
  try {
    t = new X509Certificate(cert.raw).validToDate.getTime();
  } catch {
    t = Date.parse(cert.valid_to);
  }
  return isCertificateTime(t) ? t : undefined;
}

function verifyFailure(code: string, name: string, notAfter: number | undefined): string {
  switch (code) {
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return `TLS: the certificate does not name ${name}`;
    case 'CERT_HAS_EXPIRED':
      return `TLS: the certificate expired${notAfter === undefined ? '' : ` at ${new Date(notAfter).toISOString()}`}`;
    case 'CERT_NOT_YET_VALID':
      return 'TLS: the certificate is not valid yet';
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
      return `TLS: the certificate is not signed by caBundle (${code})`;
    default:
      return `TLS: the certificate is not trusted (${code})`;
  }
}

function codeOf(e: unknown): string {
  if (typeof e === 'string') return e;
  const err = e as (Error & { code?: unknown }) | null | undefined;
  if (typeof err?.code === 'string') return err.code;
  return err instanceof Error ? err.message : String(e);
}

/**
 * Starts a TLS handshake, over a new connection to `via` or over a connected socket, and calls
 * `done` exactly once with its verdict. The caller owns the returned socket (and destroys it,
 * also on its own timeout). May throw synchronously on options the TLS layer refuses.
 */
export function handshake(
  via: { readonly host: string; readonly port: number } | { readonly socket: Socket },
  ip: string,
  tls: TlsSettings,
  alpn: readonly string[] | undefined,
  done: (h: Handshake) => void,
): TLSSocket {
  let called = false;
  const once = (h: Handshake): void => {
    if (called) return;
    called = true;
    done(h);
  };
  const name = tls.serverName ?? ip;
  let connected = 'socket' in via;
  const socket = connect({
    ...via,
    // An empty name sends no SNI, which an IP may not be sent as (RFC 6066).
    servername: tls.serverName ?? '',
    rejectUnauthorized: false,
    ...(tls.ca !== undefined ? { secureContext: tls.ca.context() } : {}),
    // Node would check against `host`, which is unset when a socket is handed in.
    checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert),
    ...(alpn !== undefined ? { ALPNProtocols: [...alpn] } : {}),
  });
  socket.once('connect', () => {
    connected = true;
  });
  socket.once('secureConnect', () => {
    const notAfter = leafNotAfter(socket);
    const failure =
      tls.ca === undefined || socket.authorized
        ? undefined
        : verifyFailure(codeOf(socket.authorizationError), name, notAfter);
    once({
      ...(failure !== undefined ? { failure } : {}),
      ...(notAfter !== undefined ? { certificateNotAfter: notAfter } : {}),
    });
  });
  // Kept for the socket's whole life: an 'error' without a listener would crash the process.
  socket.on('error', (e) => {
    once({ failure: connected ? `TLS handshake failed: ${codeOf(e)}` : codeOf(e) });
  });
  socket.once('close', () => {
    once({ failure: 'the connection closed during the TLS handshake' });
  });
  return socket;
}

/** How long a closing socket may take to flush its last bytes before it is destroyed anyway. */
const closeGraceMs = 1000;

/**
 * Closes a socket whose handshake completed: the last handshake message and close_notify go out
 * before the connection does, so that the server counts a finished handshake rather than a reset.
 * A server that stops reading cannot keep the socket: it is destroyed after a second regardless.
 */
export function closeGently(socket: TLSSocket): void {
  const backstop = setTimeout(() => {
    socket.destroy();
  }, closeGraceMs);
  socket.once('close', () => {
    clearTimeout(backstop);
  });
  socket.end(() => {
    socket.destroy();
  });
}
