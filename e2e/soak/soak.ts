// The soak run: `npm run soak -- --minutes=60`. Starts a local control plane and one outrigger
// (selector mode on, ExternalBackends health-checked against a backend farm in a network
// namespace), runs churn at moderate scale for the given time, scrapes outrigger's own /metrics
// every five seconds (heap, RSS, event-loop delay, CPU), then checks that every object is still
// exactly what it should be. Prints a per-minute table, the heap slope after warm-up and the
// largest event-loop stall; exits 1 when the heap keeps growing or the objects are wrong.
// With --out=DIR it writes the results page (see report.ts); --from=FILE re-renders it from soak.json.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { startCluster } from '../harness/controlplane.ts';
import { createBackendNetwork, netnsUnavailable } from '../harness/netns.ts';
import { startOperator } from '../harness/operator.ts';
import { provenance } from '../harness/provenance.ts';
import { World } from '../faults/world.ts';
import { perMinute, verdict, type Minute, type Sample } from './analysis.ts';
import { writeReport, type SoakResult } from './report.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    warmup: { type: 'string' },
    out: { type: 'string' },
    namespaces: { type: 'string', default: '4' },
    services: { type: 'string', default: '10' },
    pods: { type: 'string', default: '20' },
    backends: { type: 'string', default: '10' },
    addresses: { type: 'string', default: '4' },
    rate: { type: 'string', default: '10' },
    from: { type: 'string' },
    /** What else ran on the machine meanwhile, said on the page. */
    note: { type: 'string' },
  },
});
const num = (name: keyof typeof values, v: string | undefined): number => {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a number, not "${v ?? ''}"`);
  return n;
};
/** Taken at the start, so that edits made while it runs do not mark the result dirty. */
const measured = provenance();
const minutes = num('minutes', values.minutes);
const warmup = num('warmup', values.warmup ?? String(Math.min(10, Math.floor(minutes / 4))));
const rate = num('rate', values.rate);

function say(line: string): void {
  process.stdout.write(`${line}\n`);
}

function metricValue(text: string, name: string): number {
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text);
  return m === null ? NaN : Number(m[1]);
}

async function main(): Promise<void> {
  if (values.from !== undefined) {
    // Re-render the results page and chart from a saved run.
    const saved = JSON.parse(readFileSync(values.from, 'utf8')) as SoakResult;
    const files = writeReport(values.out ?? '.', saved);
    say(`wrote ${files.join(', ')}`);
    return;
  }
  const why = netnsUnavailable();
  if (why !== undefined) throw new Error(`the soak run needs network namespaces: ${why}`);
  say(`soak: ${String(minutes)} min (warm-up ${String(warmup)} min), churn ${String(rate)}/s`);
  const cluster = await startCluster();
  const dir = cluster.dir ?? '/tmp';
  const net = createBackendNetwork(dir, 4);
  const farm = net.farm();
  try {
    const kc = cluster.kubeConfig();
    const operator = await startOperator(
      cluster.kubeconfigPath,
      ['--selector-mode=all', '--zap-log-level=warn'],
      join(dir, 'outrigger.log'),
    );
    const world = await World.create(kc, farm, {
      prefix: 'soak',
      namespaces: num('namespaces', values.namespaces),
      servicesPerNamespace: num('services', values.services),
      podsPerService: num('pods', values.pods),
      backendsPerNamespace: num('backends', values.backends),
      addressesPerBackend: num('addresses', values.addresses),
      ipv4: net.ipv4,
      ipv6: net.ipv6,
      seed: 7,
    });
    const setUp = await world.converge(120_000);
    if (setUp.lost.length > 0) throw new Error(`set-up never converged:\n${setUp.lost.join('\n')}`);
    say(
      `set up ${String(world.namespaces.length)} namespaces, ${String(world.backendCount)} ExternalBackends; converged in ${String(setUp.ms)} ms`,
    );

    const samples: Sample[] = [];
    const started = Date.now();
    const churn = world.churn(rate);
    let printed = -1;
    say('minute  heap floor MiB  heap max MiB  RSS MiB  max event-loop delay ms  CPU %');
    while (Date.now() - started < minutes * 60_000) {
      try {
        const text = await (await fetch(operator.metricsUrl)).text();
        samples.push({
          t: (Date.now() - started) / 1000,
          heapUsedBytes: metricValue(text, 'nodejs_heap_size_used_bytes'),
          rssBytes: metricValue(text, 'process_resident_memory_bytes'),
          lagMaxSeconds: metricValue(text, 'nodejs_eventloop_lag_max_seconds'),
          cpuSeconds: metricValue(text, 'process_cpu_seconds_total'),
        });
      } catch (err) {
        throw new Error(`outrigger stopped answering /metrics: ${String(err)}`, { cause: err });
      }
      const done = perMinute(samples).filter(
        (m) => m.minute < Math.floor((Date.now() - started) / 60_000),
      );
      for (const m of done.filter((x) => x.minute > printed)) {
        say(row(m));
        printed = m.minute;
      }
      await delay(5000);
    }
    const stats = await churn.stop();
    const end = await world.converge(60_000);
    const unhandled = await operator.metric('outrigger_unhandled_errors_total');
    await operator.stop();

    const mins = perMinute(samples);
    const last = mins[mins.length - 1];
    if (last !== undefined && last.minute > printed) say(row(last));
    const v = verdict(mins, warmup);
    say('');
    say(
      `churn: ${String(stats.ops)} changes (${Object.entries(stats.byKind)
        .map(([k, n]) => `${k} ${String(n)}`)
        .join(', ')}), ${String(stats.failed)} refused`,
    );
    say(
      `heap floor after warm-up: ${v.baselineHeapMiB.toFixed(1)} MiB, slope ${v.heapSlopeMiBPerHour.toFixed(2)} MiB/h (limit ${v.limitMiBPerHour.toFixed(1)} MiB/h); RSS slope ${v.rssSlopeMiBPerHour.toFixed(2)} MiB/h`,
    );
    say(
      `largest event-loop stall: ${v.largestStallMs.toFixed(0)} ms (minute ${String(v.largestStallMinute)})`,
    );
    say(
      `end state: ${end.lost.length === 0 ? `every object as expected ${String(end.ms)} ms after churn stopped` : `${String(end.lost.length)} objects wrong`}; unhandled errors ${String(unhandled)}`,
    );
    if (values.out !== undefined) {
      const files = writeReport(values.out, {
        minutes,
        warmup,
        rate,
        scale: {
          namespaces: world.namespaces.length,
          'selector Services': world.namespaces.length * num('services', values.services),
          pods:
            world.namespaces.length * num('services', values.services) * num('pods', values.pods),
          ExternalBackends: world.backendCount,
          'addresses per backend': num('addresses', values.addresses),
        },
        verdict: v,
        churn: stats,
        endConvergedMs: end.ms,
        lost: end.lost,
        unhandledErrors: unhandled,
        setUpMs: setUp.ms,
        machine: measured.machine,
        date: measured.date.slice(0, 10),
        commit: measured.commit,
        ...(values.note ? { note: values.note } : {}),
        perMinute: mins,
      });
      say(`wrote ${files.map((f) => join(values.out ?? '', f)).join(', ')}`);
    }
    const failures = [
      v.growing ? 'the heap keeps growing after warm-up' : '',
      end.lost.length > 0 ? `objects wrong at the end:\n${end.lost.join('\n')}` : '',
      unhandled > 0 ? `${String(unhandled)} unhandled errors` : '',
    ].filter(Boolean);
    if (failures.length > 0) {
      say(`FAIL: ${failures.join('; ')}`);
      process.exitCode = 1;
    } else say('PASS');
  } finally {
    await farm.stop();
    await net.remove();
    await cluster.stop();
  }
}

function row(m: Minute): string {
  return [
    String(m.minute).padStart(6),
    m.heapFloorMiB.toFixed(1).padStart(15),
    m.heapMaxMiB.toFixed(1).padStart(13),
    m.rssMiB.toFixed(1).padStart(8),
    m.lagMaxMs.toFixed(0).padStart(24),
    m.cpuPercent.toFixed(1).padStart(6),
  ].join(' ');
}

main().catch((err: unknown) => {
  process.stderr.write(
    `soak: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exit(1);
});
