#!/usr/bin/env node
import { ConfigError, helpText, parseConfig, type Config } from './manager/config.ts';
import { serverVersion } from './runtime/client.ts';
import { loadConnection } from './runtime/kubeconfig.ts';
import { restClient } from './runtime/rest.ts';
import { createLogger } from './runtime/log.ts';
import { runManager } from './manager/manager.ts';
import { shutdownSignal, sleep } from './runtime/signals.ts';
import { userAgent, version } from './runtime/version.ts';

/** Exit status for a usage error, as Go's flag package uses. */
const EXIT_USAGE = 2;

async function run(config: Config): Promise<number> {
  const log = createLogger(config.logLevel);
  const stop = shutdownSignal();
  log.info({ version, config }, 'starting outrigger');

  const connection = await loadConnection(config.kubeconfig);
  log.info(
    { server: connection.server, loader: connection.loader },
    'connecting to the API server',
  );
  const probe = restClient(connection, { userAgent });
  // Keep trying while the API server is unreachable (it may still be starting), with capped backoff.
  for (
    let attempt = 0, delay = 500;
    !stop.aborted;
    attempt++, delay = Math.min(delay * 2, 30_000)
  ) {
    try {
      const v = await serverVersion(probe);
      log.info({ gitVersion: v.gitVersion, platform: v.platform }, 'connected to the API server');
      break;
    } catch (err) {
      log.warn({ err, attempt, retryInMs: delay }, 'cannot reach the API server');
      await sleep(delay, stop);
    }
  }

  if (!stop.aborted) await runManager(config, connection, log, stop);
  log.info('received a shutdown signal; exiting');
  return 0;
}

async function main(): Promise<number> {
  let config: Config;
  try {
    config = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`outrigger: ${err.message} (see outrigger --help)\n`);
      return EXIT_USAGE;
    }
    throw err;
  }
  if (config.help) {
    process.stdout.write(`${helpText()}\n`);
    return 0;
  }
  if (config.version) {
    process.stdout.write(`outrigger ${version}\n`);
    return 0;
  }
  return run(config);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`outrigger: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(err instanceof ConfigError ? EXIT_USAGE : 1);
  },
);
