import { flags, envName, type Config, type FlagRow } from './flags.ts';

export type { Config } from './flags.ts';

/**
 * The command line: flags and OUTRIGGER_* environment variables, parsed row by row through the flag
 * table (flags.ts) into one validated Config, then the checks that concern several flags at once.
 *
 * Flags follow Go's `flag` package as controller-runtime operators use it: `--name=value` or
 * `--name value`, and boolean flags accept `--name`, `--name=true` and `--name=false`. Node's
 * util.parseArgs has no `--flag=false` for booleans, which is why the small tokenizer below exists;
 * every value is then validated by its row's zod schema.
 */

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const rows: readonly FlagRow[] = flags;

/** Splits argv into flag values; throws ConfigError for unknown flags, missing values, positionals. */
function tokenize(argv: readonly string[]): Map<string, string> {
  const byName = new Map(rows.map((f) => [f.name, f]));
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') {
      if (i + 1 < argv.length) throw new ConfigError(`unexpected argument "${argv[i + 1] ?? ''}"`);
      break;
    }
    const m = /^--?([^=]+)(?:=(.*))?$/s.exec(arg);
    if (m === null) throw new ConfigError(`unexpected argument "${arg}"`);
    const name = m[1] ?? '';
    const spec = byName.get(name);
    if (spec === undefined) throw new ConfigError(`unknown flag --${name}`);
    let value = m[2];
    if (value === undefined) {
      if (spec.boolean) {
        value = 'true';
      } else {
        const next = argv[i + 1];
        if (next === undefined) throw new ConfigError(`flag --${name} needs a value`);
        value = next;
        i++;
      }
    }
    values.set(name, value);
  }
  return values;
}

export function parseConfig(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): Config {
  const fromArgs = tokenize(argv);
  const parsed: Record<string, unknown> = {};
  // In table order, so that of several bad values the first row's is the one reported.
  for (const f of rows) {
    const value = fromArgs.get(f.name) ?? env[envName(f.name)] ?? f.default;
    if (value === undefined) continue;
    const result = f.schema.safeParse(value);
    if (!result.success) {
      const source = fromArgs.has(f.name) ? `--${f.name}` : `${envName(f.name)} (for --${f.name})`;
      throw new ConfigError(
        `invalid value "${value}" for ${source}: ${result.error.issues[0]?.message ?? 'invalid'}`,
      );
    }
    parsed[f.key] = result.data;
  }
  // Every row either has a default or was skipped only when absent, and each schema yields the
  // type its row gives the property: the object is the Config the table describes.
  const config = parsed as Config;
  if (config.dnsMinTtlMs > config.dnsMaxTtlMs)
    throw new ConfigError('--dns-min-ttl must not be longer than --dns-max-ttl');
  // client-go's rules: the leader must give up before its lease can expire, and retry within that.
  if (config.renewDeadlineMs >= config.leaseDurationMs)
    throw new ConfigError(
      '--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration',
    );
  if (config.retryPeriodMs >= config.renewDeadlineMs)
    throw new ConfigError(
      '--leader-elect-retry-period must be shorter than --leader-elect-renew-deadline',
    );
  return config;
}

export function helpText(): string {
  const lines = ['Usage: outrigger [flags]', '', 'Flags:'];
  for (const f of rows) {
    const def = f.default !== undefined && f.default !== '' ? ` (default "${f.default}")` : '';
    lines.push(`  --${f.name}${f.boolean ? '' : ' value'}`, `        ${f.help}${def}`);
  }
  lines.push(
    '',
    'Every flag can also be set through an environment variable, e.g. OUTRIGGER_SELECTOR_MODE.',
  );
  return lines.join('\n');
}
