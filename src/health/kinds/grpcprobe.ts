// The client of the grpc check (grpc.ts), loaded at the first gRPC probe.
//
// The channel is made for one probe and closed after it, to the literal IP (an ipv4:/ipv6:
// target, never a name to resolve), without the environment's HTTP proxy, retries, a service
// config lookup or a shared connection pool: a probe must reach the address it names and nothing
// else, and one tenant's probe must not reuse another's connection.
import {
  CallCredentials,
  ChannelCredentials,
  Client,
  Metadata,
  status as grpcStatus,
  type ChannelOptions,
  type ServiceError,
} from '@grpc/grpc-js';
import type { Socket } from 'node:net';
import { service as healthService } from 'grpc-health-check';
import { handshake, type Handshake } from './handshake.ts';
import type { GrpcProbe } from './grpc.ts';
import type { ProbeOutcome } from './kind.ts';
import type { TlsSettings } from './options.ts';

/** The largest answer read: a HealthCheckResponse is a few bytes. */
export const maxResponseBytes = 4096;

const checkMethod = (() => {
  const m = healthService.Check;
  // The package's own .proto, loaded when it is imported: absent only if the package changed shape.
  if (m === undefined) throw new Error('grpc-health-check defines no Health/Check method');
  return m;
})();

/** Server-chosen text in a status message: one line, bounded. */
function tidy(s: string): string {
  const line = Array.from(s, (ch) => {
    const c = ch.charCodeAt(0);
    return c < 0x20 || c === 0x7f ? ' ' : ch;
  })
    .join('')
    // grpc-js stamps connection errors with the time and may end with an empty note: the same
    // failure must read the same at every probe, or every probe would rewrite status.
    .replace(/ ?\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '')
    .replace(/\s*Resolution note:\s*$/, '')
    .trim();
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}

function statusName(code: number): string {
  return (grpcStatus as unknown as Record<number, string | undefined>)[code] ?? `code ${code}`;
}

/**
 * The connection of one probe, plaintext or TLS. grpc-js's own credentials will not do: its TLS
 * hands the certificate to no one unless it verifies (and the expiry is reported for unverified
 * servers too), and closing a channel closes its HTTP/2 session gracefully, which against a server
 * that never speaks leaves the socket open for good. This connector goes through the same
 * handshake as the tls and http kinds and keeps every socket it is given, so that the probe can
 * destroy them when it is over. Subclassing ChannelCredentials is how grpc-js lets a transport be
 * supplied (its abstract members are public in its typings; the version is pinned and the tests
 * cover this).
 */
class ProbeConnection extends ChannelCredentials {
  readonly #ip: string;
  readonly #tls: TlsSettings | undefined;
  readonly #sockets = new Set<Socket>();
  #handshake: Handshake | undefined;
  #over = false;

  constructor(ip: string, tls: TlsSettings | undefined) {
    super();
    this.#ip = ip;
    this.#tls = tls;
  }

  /** What the TLS handshake found, once there was one. */
  get handshake(): Handshake | undefined {
    return this.#handshake;
  }

  /**
   * Ends every connection this probe made, whatever state grpc-js left it in, and refuses any
   * later one: grpc-js leaves a subchannel that failed to connect in backoff when its channel
   * closes, and connects again once the backoff ends (1.14.x), which would reach an address the
   * probe is done with (and may no longer be allowed to reach). It asks `waitForReady` before it
   * opens the TCP connection, so refusing there sends nothing.
   */
  destroy(): void {
    this.#over = true;
    for (const s of this.#sockets) s.destroy();
    this.#sockets.clear();
  }

  override _isSecure(): boolean {
    return this.#tls !== undefined;
  }

  override _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  override _createSecureConnector(
    _target: unknown,
    _options: ChannelOptions,
    callCredentials?: CallCredentials,
  ): ReturnType<ChannelCredentials['_createSecureConnector']> {
    return {
      connect: (socket: Socket) => {
        if (this.#over) {
          socket.destroy();
          return Promise.reject(new Error('the probe is over'));
        }
        this.#sockets.add(socket);
        const tls = this.#tls;
        if (tls === undefined) return Promise.resolve({ socket, secure: false });
        return new Promise((resolve, reject) => {
          const secured = handshake({ socket }, this.#ip, tls, ['h2'], (h) => {
            this.#handshake = h;
            if (h.failure === undefined) resolve({ socket: secured, secure: true });
            else reject(new Error(h.failure));
          });
          this.#sockets.add(secured);
        });
      },
      waitForReady: () =>
        this.#over ? Promise.reject(new Error('the probe is over')) : Promise.resolve(),
      getCallCredentials: () => callCredentials ?? CallCredentials.createEmpty(),
      destroy: () => undefined,
    };
  }
}

function channelOptions(spec: GrpcProbe, timeoutMs: number): ChannelOptions {
  return {
    // The environment's grpc_proxy/https_proxy/http_proxy would carry the probe elsewhere.
    'grpc.enable_http_proxy': 0,
    // A probe is one attempt: a retry would double the load a failing backend gets.
    'grpc.enable_retries': 0,
    // The server must not steer the client (the target is an IP, so there is nothing to look
    // up, but the option says it outright).
    'grpc.service_config_disable_resolution': 1,
    // grpc-js shares connections between channels through a global pool by default; a probe
    // must open its own, or one tenant's check could ride on another's connection.
    'grpc.use_local_subchannel_pool': 1,
    // Channelz keeps a registry entry per channel: nothing to look at for a channel this short.
    'grpc.enable_channelz': 0,
    'grpc.max_receive_message_length': maxResponseBytes,
    'grpc.max_send_message_length': 1024,
    // In MB: the HTTP/2 session of one probe holds a few frames at most.
    'grpc-node.max_session_memory': 1,
    // No reconnect inside the probe's lifetime.
    'grpc.initial_reconnect_backoff_ms': timeoutMs * 2,
    'grpc.max_reconnect_backoff_ms': timeoutMs * 2,
    ...(spec.serverName !== undefined
      ? { 'grpc.default_authority': `${spec.serverName}:${spec.port}` }
      : {}),
  };
}

export function runGrpc(spec: GrpcProbe, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const target = spec.ip.includes(':')
      ? `ipv6:[${spec.ip}]:${spec.port}`
      : `ipv4:${spec.ip}:${spec.port}`;
    const connection = new ProbeConnection(spec.ip, spec.tls);
    const client = new Client(target, connection, channelOptions(spec, timeoutMs));
    let settled = false;
    const finish = (failure: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      call.cancel();
      client.close();
      connection.destroy();
      const notAfter = connection.handshake?.certificateNotAfter;
      resolve({
        ...(failure !== undefined ? { failure } : {}),
        ...(notAfter !== undefined ? { certificateNotAfter: notAfter } : {}),
      });
    };
    const call = client.makeUnaryRequest(
      checkMethod.path,
      (m: { service: string }) => checkMethod.requestSerialize(m),
      (b: Buffer) => checkMethod.responseDeserialize(b) as { status?: unknown },
      { service: spec.service },
      new Metadata(),
      { deadline: Date.now() + timeoutMs },
      (err: ServiceError | null, res?: { status?: unknown }) => {
        if (err !== null) {
          // The handshake's own words say more than UNAVAILABLE.
          const tlsFailure = connection.handshake?.failure;
          if (tlsFailure !== undefined) finish(tlsFailure);
          else if (err.code === grpcStatus.DEADLINE_EXCEEDED)
            finish(`no response within ${timeoutMs} ms`);
          else finish(`gRPC ${statusName(err.code)}: ${tidy(err.details)}`);
          return;
        }
        const s = res?.status;
        if (s === 'SERVING') finish(undefined);
        else
          finish(
            `gRPC health ${spec.service === '' ? '' : `of ${spec.service} `}is ${typeof s === 'string' ? s : `status ${String(s)}`}`,
          );
      },
    );
    const timer = setTimeout(() => {
      finish(`no response within ${timeoutMs} ms`);
    }, timeoutMs);
  });
}
