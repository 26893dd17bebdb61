// The tls check: a TCP connection opens and a TLS handshake completes within the timeout (with
// caBundle, against a certificate that is trusted and names the server), then it is closed.
import { z } from 'zod';
import { portRef } from '../../runtime/crdfields.ts';
import { closeGently, handshake } from './handshake.ts';
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
      'The port to connect to: a number, or the name of an entry in spec.ports.',
    ),
    ...tlsFields,
  }),
  tlsRules(),
).describe(
  "Checks that a TLS handshake with the address completes within timeoutSeconds; with caBundle, also that the server's certificate is trusted and names serverName (or the IP). Sends nothing else.",
);

export interface TlsProbe extends ProbeBase<'tls'> {
  readonly tls: TlsSettings;
}

function run(spec: TlsProbe, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    let connected = false;
    const finish = (o: ProbeOutcome, completed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (completed) closeGently(socket);
      else socket.destroy();
      resolve(o);
    };
    const socket = handshake(
      { host: spec.ip, port: spec.port },
      spec.ip,
      spec.tls,
      undefined,
      (h) => {
        finish(h, h.certificateNotAfter !== undefined);
      },
    );
    socket.once('connect', () => {
      connected = true;
    });
    const timer = setTimeout(() => {
      finish(
        {
          failure: connected
            ? `no TLS handshake within ${timeoutMs} ms`
            : `no connection within ${timeoutMs} ms`,
        },
        false,
      );
    }, timeoutMs);
  });
}

export const tls: ProbeKind<'tls', typeof check, TlsProbe> = {
  name: 'tls',
  check,
  spec: (c, ip, port, refs) => {
    const t = tlsSettings(c, refs);
    return 'refused' in t
      ? { kind: 'tls', ip, port, tls: {}, refused: t.refused }
      : { kind: 'tls', ip, port, tls: t.tls };
  },
  refs: tlsRefs,
  run,
};
