// The Ingress seed on a node of e2e/harness/dataplane.ts: Traefik as the Ingress controller, the
// seed's zl-lb Ingress translated to it, and a bounded request loop that measures what users of
// the Ingress see. Shared by the data-path test and the demo.
//
// The seed is written for ingress-nginx (`path: /lb/(zl/.*)` with `rewrite-target: /$1`). Traefik
// v3.6's Ingress provider has no rewrite annotation, so the rewrite becomes a replacePathRegex
// middleware from Traefik's file provider, attached by annotation; the path becomes a Prefix.
import { writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { NetworkingV1Api, type V1Ingress } from '@kubernetes/client-node';
import type { Cluster } from './controlplane.ts';
import type { Node } from './dataplane.ts';

/** Starts Traefik on the node with the seed's rewrite middleware; resolves with its URL. */
export async function startIngressController(
  cluster: Cluster,
  node: Node,
  dir: string,
): Promise<string> {
  const dynamic = join(dir, 'traefik-dynamic.yaml');
  writeFileSync(
    dynamic,
    [
      'http:',
      '  middlewares:',
      '    zl-rewrite:',
      '      replacePathRegex:',
      '        regex: "^/lb/(zl/.*)"',
      '        replacement: "/$1"',
      '',
    ].join('\n'),
  );
  await cluster
    .kubeConfig()
    .makeApiClient(NetworkingV1Api)
    .createIngressClass({
      body: {
        metadata: { name: 'traefik' },
        spec: { controller: 'traefik.io/ingress-controller' },
      },
    });
  return (await node.startTraefik({ args: [`--providers.file.filename=${dynamic}`] })).url;
}

/** The seed's zl-lb Ingress for Traefik, for requests with Host `host`. */
export function seedIngress(namespace: string, host: string): V1Ingress {
  return {
    metadata: {
      name: 'zl-lb',
      namespace,
      annotations: { 'traefik.ingress.kubernetes.io/router.middlewares': 'zl-rewrite@file' },
    },
    spec: {
      ingressClassName: 'traefik',
      rules: [
        {
          host,
          http: {
            paths: [
              {
                path: '/lb/zl',
                pathType: 'Prefix',
                backend: { service: { name: 'zl-lb', port: { number: 80 } } },
              },
            ],
          },
        },
      ],
    },
  };
}

export interface Reply {
  readonly at: number;
  /** The HTTP status, or 0 when no answer came within 2 s. */
  readonly status: number;
  /** What the backend said: its address and the path it saw ("10.250.1.10 /zl/index.html"). */
  readonly body: string;
}

/** One request to the Ingress controller at `url`, on a new connection, with a 2 s limit. */
export function get(url: string, host: string, path: string): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const req = request(
      {
        host: u.hostname,
        port: u.port || 80,
        path,
        headers: { Host: host },
        agent: false,
        timeout: 2000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => {
          resolve({ at: Date.now(), status: res.statusCode ?? 0, body: body.trim() });
        });
        // Cut off after the headers: no answer (a resolved promise ignores later calls).
        res.on('error', () => {
          resolve({ at: Date.now(), status: 0, body: '' });
        });
        res.on('close', () => {
          if (!res.complete) resolve({ at: Date.now(), status: 0, body: '' });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => {
      resolve({ at: Date.now(), status: 0, body: '' });
    });
    req.end();
  });
}

/** Requests every `periodMs` until `untilMs` (epoch) or `max` requests: bounded in count and time. */
export async function requestLoop(
  url: string,
  host: string,
  untilMs: number,
  periodMs: number,
  max = 2000,
): Promise<Reply[]> {
  const replies: Reply[] = [];
  for (let i = 0; i < max && Date.now() < untilMs; i++) {
    const started = Date.now();
    replies.push(await get(url, host, '/lb/zl/index.html'));
    await delay(Math.max(0, periodMs - (Date.now() - started)));
  }
  return replies;
}

export interface Share {
  readonly total: number;
  readonly failed: number;
  readonly share: number;
  /** ms from `from` to the last failed request (0 when none failed). */
  readonly lastFailureMs: number;
}

/** The failed requests among those sent from `from` on. */
export function failures(replies: readonly Reply[], from: number): Share {
  const after = replies.filter((r) => r.at >= from);
  const failed = after.filter((r) => r.status !== 200);
  return {
    total: after.length,
    failed: failed.length,
    share: after.length === 0 ? 0 : failed.length / after.length,
    lastFailureMs: Math.max(0, ...failed.map((r) => r.at - from)),
  };
}
