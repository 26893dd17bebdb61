import { describe, expect, it } from '@jest/globals';
import { ConfigError, helpText, parseConfig } from './config.ts';
import { envName, flags, type FlagRow } from './flags.ts';

describe('parseConfig', () => {
  it('turns podSelector off, which the chart does unless it is enabled', () => {
    expect(parseConfig(['--pod-selector=false']).podSelector).toBe(false);
    expect(
      parseConfig(['--health-check-reader-role=r-outrigger-health-check-reader'])
        .healthCheckReaderRole,
    ).toBe('r-outrigger-health-check-reader');
  });

  it('applies controller-runtime style defaults', () => {
    expect(parseConfig([])).toEqual({
      metricsBindAddress: ':8080',
      metricsSecure: true,
      metricsCertPath: '',
      metricsCertName: 'tls.crt',
      metricsCertKey: 'tls.key',
      healthProbeBindAddress: ':8081',
      leaderElect: false,
      leaderElectionId: 'outrigger-leader',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2000,
      watchNamespaces: [],
      selectorMode: { kind: 'off' },
      nodeName: '',
      podName: '',
      podSelector: true,
      probersPerAddress: 1,
      healthCheckReaderRole: 'outrigger-health-check-reader',
      concurrentEndpointSyncs: 5,
      endpointUpdatesBatchPeriodMs: 0,
      concurrentExternalBackendSyncs: 5,
      maxConcurrentProbes: 100,
      maxProbeTargetsPerNamespace: 1000,
      maxEndpointsPerSlice: 100,
      statusBatchMs: 5000,
      syncPeriodMs: 36_000_000,
      watchStallTimeoutMs: 90_000,
      deniedCidrs: [],
      dnsServers: [],
      dnsMinTtlMs: 5000,
      dnsMaxTtlMs: 300_000,
      dnsStaleMs: 600_000,
      dnsTimeoutMs: 2000,
      certificateWarningMs: 1_209_600_000,
      maxConcurrentDnsLookups: 16,
      kubeApiQps: 20,
      kubeApiBurst: 30,
      logLevel: 'info',
      help: false,
      version: false,
    });
  });

  it.each([
    [['--leader-elect'], true],
    [['--leader-elect=true'], true],
    [['--leader-elect=false'], false],
    [['-leader-elect'], true],
  ])('parses boolean flag %j as %s', (argv, expected) => {
    expect(parseConfig(argv).leaderElect).toBe(expected);
  });

  it('checks the leader-election timings against each other, as client-go does', () => {
    expect(
      parseConfig([
        '--leader-elect-lease-duration=4s',
        '--leader-elect-renew-deadline=3s',
        '--leader-elect-retry-period=500ms',
      ]),
    ).toMatchObject({
      leaseDurationMs: 4000,
      renewDeadlineMs: 3000,
      retryPeriodMs: 500,
    });
    expect(() => parseConfig(['--leader-elect-renew-deadline=15s'])).toThrow(
      '--leader-elect-renew-deadline must be shorter than --leader-elect-lease-duration',
    );
    expect(() => parseConfig(['--leader-elect-retry-period=10s'])).toThrow(
      '--leader-elect-retry-period must be shorter than --leader-elect-renew-deadline',
    );
  });

  it('takes extra deny-list CIDRs and refuses malformed ones', () => {
    expect(parseConfig(['--denied-cidrs=10.0.0.0/8, fd00::/8']).deniedCidrs).toEqual([
      '10.0.0.0/8',
      'fd00::/8',
    ]);
    expect(() => parseConfig(['--denied-cidrs=10.0.0.0/33'])).toThrow(
      'invalid value "10.0.0.0/33" for --denied-cidrs: must be CIDRs such as "10.0.0.0/8"',
    );
  });

  it('takes DNS servers as Node accepts them, and TTL bounds that make sense together', () => {
    expect(
      parseConfig(['--dns-servers=10.96.0.10, 127.0.0.1:5353,[fd00::10]:53,fd00::11']).dnsServers,
    ).toEqual(['10.96.0.10', '127.0.0.1:5353', '[fd00::10]:53', 'fd00::11']);
    for (const bad of ['999.1.1.1', ':', '1.2.3.4:99999', '1.2.3.4:0', '[1.2.3.4]:53'])
      expect(() => parseConfig([`--dns-servers=${bad}`])).toThrow('must be IP addresses');
    expect(() => parseConfig(['--dns-servers=dns.example.com'])).toThrow(
      'invalid value "dns.example.com" for --dns-servers: must be IP addresses with an optional port',
    );
    expect(() => parseConfig(['--dns-min-ttl=10m', '--dns-max-ttl=1m'])).toThrow(
      '--dns-min-ttl must not be longer than --dns-max-ttl',
    );
    expect(() => parseConfig(['--dns-min-ttl=0'])).toThrow('must be between 100ms and 1h');
  });

  it("takes controller-runtime's secure-metrics flags", () => {
    const c = parseConfig([
      '--metrics-secure=false',
      '--metrics-cert-path=/certs',
      '--metrics-cert-name=crt.pem',
      '--metrics-cert-key=key.pem',
    ]);
    expect(c).toMatchObject({
      metricsSecure: false,
      metricsCertPath: '/certs',
      metricsCertName: 'crt.pem',
      metricsCertKey: 'key.pem',
    });
    expect(() => parseConfig(['--metrics-cert-name=a/b'])).toThrow('must be a file name');
  });

  it('accepts --flag value and --flag=value forms', () => {
    const c = parseConfig(['--kubeconfig', '/tmp/kc', '--metrics-bind-address=127.0.0.1:9090']);
    expect(c.kubeconfig).toBe('/tmp/kc');
    expect(c.metricsBindAddress).toBe('127.0.0.1:9090');
  });

  it.each([
    ['off', { kind: 'off' }],
    ['all', { kind: 'all' }],
    ['team-a', { kind: 'namespaces', namespaces: ['team-a'] }],
    ['team-a, team-b,', { kind: 'namespaces', namespaces: ['team-a', 'team-b'] }],
  ])('parses --selector-mode=%s', (value, expected) => {
    expect(parseConfig([`--selector-mode=${value}`]).selectorMode).toEqual(expected);
  });

  it.each([
    ['0', 0],
    ['500ms', 500],
    ['1s', 1000],
    ['1.5s', 1500],
    ['2m', 120_000],
  ])('parses --endpoint-updates-batch-period=%s', (value, ms) => {
    expect(
      parseConfig([`--endpoint-updates-batch-period=${value}`]).endpointUpdatesBatchPeriodMs,
    ).toBe(ms);
  });

  it('splits --watch-namespaces', () => {
    expect(parseConfig(['--watch-namespaces=a,b']).watchNamespaces).toEqual(['a', 'b']);
  });

  it.each([':8080', '0', '127.0.0.1:0', '[::1]:8443', 'localhost:65535'])(
    'accepts bind address %s',
    (addr) => {
      expect(parseConfig([`--health-probe-bind-address=${addr}`]).healthProbeBindAddress).toBe(
        addr,
      );
    },
  );

  it.each([
    [['--bogus'], 'unknown flag --bogus'],
    [['positional'], 'unexpected argument "positional"'],
    [['--kubeconfig'], 'flag --kubeconfig needs a value'],
    [['--leader-elect=yes'], 'invalid value "yes" for --leader-elect'],
    [['--selector-mode=Team_A'], 'invalid value "Team_A" for --selector-mode'],
    [['--metrics-bind-address=8080'], 'invalid value "8080" for --metrics-bind-address'],
    [['--metrics-bind-address=:70000'], 'invalid value ":70000" for --metrics-bind-address'],
    [['--zap-log-level=verbose'], 'invalid value "verbose" for --zap-log-level'],
    [['--watch-namespaces=a,B'], 'invalid value "a,B" for --watch-namespaces'],
    [['--leader-election-namespace=-x'], 'invalid value "-x" for --leader-election-namespace'],
    [
      ['--endpoint-updates-batch-period=5'],
      'invalid value "5" for --endpoint-updates-batch-period',
    ],
    [['--concurrent-endpoint-syncs=0'], 'invalid value "0" for --concurrent-endpoint-syncs'],
    [['--concurrent-endpoint-syncs=two'], 'invalid value "two" for --concurrent-endpoint-syncs'],
    [['--watch-stall-timeout=0'], 'must be between 1s and 24h'],
    // Past Node's timer limit a timeout fires at once: every watch would abort as stalled.
    [['--watch-stall-timeout=600h'], 'must be between 1s and 24h'],
  ])('rejects %j with a one-line message', (argv, message) => {
    const parse = (): unknown => parseConfig(argv);
    expect(parse).toThrow(ConfigError);
    expect(parse).toThrow(message);
    try {
      parse();
    } catch (err) {
      expect((err as Error).message).not.toContain('\n');
    }
  });

  it('reads OUTRIGGER_* environment variables, with flags taking precedence', () => {
    const env = { OUTRIGGER_SELECTOR_MODE: 'all', OUTRIGGER_ZAP_LOG_LEVEL: 'debug' };
    expect(parseConfig([], env).selectorMode).toEqual({ kind: 'all' });
    expect(parseConfig(['--selector-mode=off'], env).selectorMode).toEqual({ kind: 'off' });
    expect(parseConfig([], env).logLevel).toBe('debug');
  });

  it('names the environment variable when its value is bad', () => {
    expect(() => parseConfig([], { OUTRIGGER_LEADER_ELECT: 'maybe' })).toThrow(
      'invalid value "maybe" for OUTRIGGER_LEADER_ELECT (for --leader-elect)',
    );
  });
});

describe('help', () => {
  it('lists every flag', () => {
    const text = helpText();
    for (const f of flags) expect(text).toContain(`--${f.name}`);
  });

  it('prints every row of the table, in order, with its default', () => {
    const lines = helpText().split('\n');
    const blocks = lines.flatMap((l, i) =>
      l.startsWith('  --') ? [{ usage: l, help: lines[i + 1] ?? '' }] : [],
    );
    const rows: readonly FlagRow[] = flags;
    expect(blocks.map((b) => b.usage)).toEqual(
      rows.map((f) => `  --${f.name}${f.boolean ? '' : ' value'}`),
    );
    for (const [i, f] of rows.entries()) {
      const shown = f.default !== undefined && f.default !== '' ? ` (default "${f.default}")` : '';
      expect(blocks[i]?.help).toBe(`        ${f.help}${shown}`);
    }
    expect(helpText()).toContain('--max-probe-targets-per-namespace value');
    expect(helpText()).toContain('(default "1000")');
  });

  it('derives env names from flag names', () => {
    expect(envName('metrics-bind-address')).toBe('OUTRIGGER_METRICS_BIND_ADDRESS');
  });
});
