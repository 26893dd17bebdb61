// The HTTP side of the manager: /metrics (plain, or TLS with each scrape reviewed), and the
// /healthz and /readyz probes.
import type { Logger } from '../runtime/log.ts';
import type { Metrics } from '../runtime/metrics.ts';
import { ConfigError, type Config } from './config.ts';
import type { Rest } from '../runtime/rest.ts';
import { MetricsAuthorizer, kubeReviewer } from './metricsauth.ts';
import { readKeyPair, selfSignedKeyPair, watchKeyPair, type KeyPair } from './metricstls.ts';
import {
  closeServer,
  metricsMinTlsVersion,
  serveMetrics,
  serveProbes,
  type Check,
  type SecureMetrics,
} from './server.ts';

/** The certificate and the reviews of the secure metrics endpoint; undefined when it is plain. */
async function secureMetrics(
  config: Config,
  rest: Rest,
  log: Logger,
  metrics: Metrics,
): Promise<SecureMetrics | undefined> {
  if (!config.metricsSecure || config.metricsBindAddress === '0') return undefined;
  let keyPair: KeyPair;
  if (config.metricsCertPath === '') {
    keyPair = await selfSignedKeyPair();
    log.info('no --metrics-cert-path: serving metrics with a self-signed certificate');
  } else {
    try {
      keyPair = await readKeyPair({
        dir: config.metricsCertPath,
        certName: config.metricsCertName,
        keyName: config.metricsCertKey,
      });
    } catch (err) {
      throw new ConfigError(
        `--metrics-cert-path: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
  const authorizer = new MetricsAuthorizer(kubeReviewer(rest));
  return {
    keyPair,
    authorizer,
    onDecision: (d) => {
      metrics.metricsAuth.inc({ result: d.outcome, cached: String(d.cached) });
      // A failed review is the operator's problem (its RBAC, the API server), worth a line each
      // time it is really asked; refusals of strangers are counted, not logged.
      if (d.outcome === 'error' && !d.cached)
        log.error({ err: d.error }, 'cannot review a metrics scrape');
    },
  };
}

export interface Serving {
  /** Whether /metrics is served over TLS with reviewed scrapes. */
  readonly secure: boolean;
  close(): Promise<void>;
}

/** Starts the metrics and probe servers; `close` stops them and the certificate watch. */
export async function serve(
  config: Config,
  rest: Rest,
  log: Logger,
  metrics: Metrics,
  checks: { readonly healthz: Check[]; readonly readyz: Check[] },
): Promise<Serving> {
  const { healthz, readyz } = checks;
  const secure = await secureMetrics(config, rest, log, metrics);
  const metricsServer = await serveMetrics(config.metricsBindAddress, metrics.registry, secure);
  const stopCertWatch =
    secure !== undefined && config.metricsCertPath !== '' && metricsServer !== undefined
      ? watchKeyPair(
          {
            dir: config.metricsCertPath,
            certName: config.metricsCertName,
            keyName: config.metricsCertKey,
          },
          secure.keyPair,
          (pair: KeyPair) => {
            if ('setSecureContext' in metricsServer) {
              // Every TLS option again: setSecureContext replaces the context whole, and would
              // drop the minimum version otherwise.
              metricsServer.setSecureContext({
                cert: pair.cert,
                key: pair.key,
                minVersion: metricsMinTlsVersion,
              });
              log.info({ path: config.metricsCertPath }, 'metrics certificate reloaded');
            }
          },
          (err: unknown) => {
            log.warn({ err }, 'cannot reload the metrics certificate; serving the previous one');
          },
        )
      : undefined;
  const probeServer = await serveProbes(config.healthProbeBindAddress, { healthz, readyz });

  return {
    secure: secure !== undefined,
    close: async () => {
      stopCertWatch?.();
      await Promise.all([closeServer(metricsServer), closeServer(probeServer)]);
    },
  };
}
