// The grpc check: grpc.health.v1.Health/Check on the address, healthy when the answer is SERVING.
// Plaintext by default, TLS with `tls: true`. Its schema and spec live here; the client
// (grpcprobe.ts) is loaded at the first gRPC probe: grpc-js and the health service's protobuf
// definitions cost about 20 MiB of RSS, which a cluster with no gRPC check never needs.
import { z } from 'zod';
import { portRef, matching } from '../../runtime/crdfields.ts';
import type { ProbeBase, ProbeKind, ProbeOutcome } from './kind.ts';
import {
  tlsFields,
  tlsRefs,
  tlsRules,
  tlsSettings,
  withRules,
  type TlsSettings,
} from './options.ts';

const check = withRules(
  z.object({
    port: portRef.describe(
      'The port of the gRPC server: a number, or the name of an entry in spec.ports.',
    ),
    service: matching(
      z.string().min(1).max(256),
      /^[A-Za-z0-9_.\-/]+$/,
      'must be a gRPC service name such as "grpc.health.v1.Health": letters, digits, ".", "_", "-" and "/"',
    )
      .describe(
        "The service whose health is asked for (HealthCheckRequest.service); default: the server's overall health.",
      )
      .optional(),
    tls: z
      .boolean()
      .describe(
        'Speak TLS (default false: plaintext HTTP/2). The certificate is verified only when caBundle is set.',
      )
      .default(false),
    ...tlsFields,
  }),
  tlsRules({
    cel: 'has(self.tls) && self.tls',
    check: (c) => c.tls,
    why: 'set tls: true',
  }),
).describe(
  'Calls grpc.health.v1.Health/Check and counts the address healthy when the answer is SERVING.',
);

export interface GrpcProbe extends ProbeBase<'grpc'> {
  /** "" asks for the server's overall health. */
  readonly service: string;
  /** The :authority (and SNI with TLS); absent: ip:port. */
  readonly serverName?: string;
  /** Present when the check speaks TLS. */
  readonly tls?: TlsSettings;
}

let client: Promise<typeof import('./grpcprobe.ts')> | undefined;

/**
 * The client module, loaded once; a failed load is tried again at the next probe rather than
 * failing every gRPC probe until a restart.
 */
function loadClient(): Promise<typeof import('./grpcprobe.ts')> {
  client ??= import('./grpcprobe.ts').catch((err: unknown) => {
    client = undefined;
    throw err;
  });
  return client;
}

async function run(spec: GrpcProbe, timeoutMs: number): Promise<ProbeOutcome> {
  return (await loadClient()).runGrpc(spec, timeoutMs);
}

export const grpc: ProbeKind<'grpc', typeof check, GrpcProbe> = {
  name: 'grpc',
  check,
  spec: (c, ip, port, refs) => {
    // Loading blocks the event loop for a moment: do it when a gRPC check is first seen, not
    // in the middle of a probing round. A failure here is retried by the probe itself.
    loadClient().catch(() => undefined);
    const base = {
      kind: 'grpc' as const,
      ip,
      port,
      service: c.service ?? '',
      ...(c.serverName !== undefined ? { serverName: c.serverName } : {}),
    };
    if (!c.tls) return base;
    const t = tlsSettings(c, refs);
    return 'refused' in t ? { ...base, tls: {}, refused: t.refused } : { ...base, tls: t.tls };
  },
  refs: (c) => (c.tls ? tlsRefs(c) : []),
  run,
};
