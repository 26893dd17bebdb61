// The tcp check: a TCP connection to the address opens within the timeout, and is closed at once.
import { connect } from 'node:net';
import { z } from 'zod';
import { portRef } from '../../runtime/crdfields.ts';
import type { ProbeBase, ProbeKind } from './kind.ts';

const check = z
  .object({
    port: portRef.describe(
      'The port to connect to: a number, or the name of an entry in spec.ports.',
    ),
  })
  .describe(
    'Checks that a TCP connection to the address opens within timeoutSeconds; it is closed at once with a reset.',
  );

export type TcpProbe = ProbeBase<'tcp'>;

export const tcp: ProbeKind<'tcp', typeof check, TcpProbe> = {
  name: 'tcp',
  check,
  spec: (_check, ip, port) => ({ kind: 'tcp', ip, port }),
  refs: () => [],
  run: (spec, timeoutMs) =>
    new Promise((resolve) => {
      const socket = connect({ host: spec.ip, port: spec.port, timeout: timeoutMs });
      const done = (failure: string | undefined): void => {
        socket.destroy();
        resolve(failure === undefined ? {} : { failure });
      };
      socket.once('connect', () => {
        // Closed with a reset (SO_LINGER 0; kubelet's probes set SO_LINGER for the same reason
        // since kubernetes#115143): a normal close leaves the socket in TIME_WAIT for a minute,
        // which at 10 000 addresses every 10 s is some 60 000 sockets, ephemeral ports and
        // conntrack entries held for nothing, and costs both ends the FIN exchange. The
        // connection carried no data, so a reset loses nothing.
        socket.resetAndDestroy();
        resolve({});
      });
      socket.once('timeout', () => {
        done(`no connection within ${timeoutMs} ms`);
      });
      socket.once('error', (e: NodeJS.ErrnoException) => {
        done(e.code ?? e.message);
      });
    }),
};
