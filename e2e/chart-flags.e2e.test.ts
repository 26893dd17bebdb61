// The chart's container args against the flag table (src/manager/flags.ts), through the chart as
// Helm renders it: the args are generated from the table, but the defaults the table claims for a
// chart install come from values.yaml and the chart's helpers (the metrics port, a release's
// podSelector choice, the Lease's name), which only a render shows. Needs helm, no cluster.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from '@jest/globals';
import { loadAll } from 'js-yaml';
import { flags, type FlagRow } from '../src/manager/flags.ts';
import { ensureHelm } from './harness/binaries.ts';

const chartDir = fileURLToPath(new URL('../charts/outrigger', import.meta.url));
const rows: readonly FlagRow[] = flags;
const release = 'edge';
const releaseNs = 'platform';

let helmBin: string;

interface Deployment {
  kind: string;
  metadata: { name: string };
  spec: { template: { spec: { containers: { args: string[] }[] } } };
}

/** The Deployment `helm template` renders with these `--set` values. */
function deployment(...set: string[]): Deployment {
  const r = spawnSync(
    helmBin,
    [
      'template',
      release,
      chartDir,
      `--namespace=${releaseNs}`,
      '--kube-version=1.36.3',
      '--set=image.repository=registry.example/outrigger',
      ...set.map((s) => `--set=${s}`),
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`helm template failed:\n${r.stderr}`);
  const found = (loadAll(r.stdout) as ({ kind?: string } | null)[]).find(
    (d) => d?.kind === 'Deployment',
  );
  if (found === undefined) throw new Error('helm template rendered no Deployment');
  return found as Deployment;
}

const argsOf = (d: Deployment): string[] => d.spec.template.spec.containers[0]?.args ?? [];

/** What the table says a default install passes, for the release that rendered `d`. */
function expected(d: Deployment, include: (f: FlagRow) => boolean): string[] {
  return rows
    .filter((f) => f.chart !== undefined && include(f))
    .map((f) => {
      const value = (f.chart?.default ?? f.default ?? '')
        .replaceAll('<release>', d.metadata.name)
        .replaceAll('<namespace>', releaseNs);
      return `--${f.name}=${value}`;
    });
}

beforeAll(() => {
  helmBin = ensureHelm();
});

describe("the chart's args", () => {
  it("are every chart row of the flag table, with the table's chart default, in its order", () => {
    const d = deployment();
    expect(d.metadata.name).toBe('edge-outrigger');
    expect(argsOf(d)).toEqual(expected(d, () => true));
    // Where the chart's default is not the binary's, the table says so (and the docs with it).
    expect(argsOf(d)).toContain('--leader-elect=true');
    expect(argsOf(d)).toContain('--leader-election-id=edge-outrigger-leader');
  });

  it('leave out the flags whose condition does not hold', () => {
    const d = deployment('metrics.secure=false');
    const secureOnly = rows.filter((f) => f.chart?.when !== undefined).map((f) => f.name);
    expect(secureOnly).toEqual(['metrics-cert-path', 'metrics-cert-name', 'metrics-cert-key']);
    expect(argsOf(d)).toEqual(
      expected(d, (f) => f.chart?.when === undefined).map((a) =>
        a === '--metrics-secure=true' ? '--metrics-secure=false' : a,
      ),
    );
  });

  it('follow the values that set them, with extraArgs after them', () => {
    const d = deployment(
      'maxProbeTargetsPerNamespace=7',
      'watchNamespaces={a,b}',
      'metrics.port=9090',
      'podSelector.enabled=true',
      'extraArgs={--sync-period=1h}',
    );
    const args = argsOf(d);
    expect(args).toContain('--max-probe-targets-per-namespace=7');
    expect(args).toContain('--watch-namespaces=a,b');
    expect(args).toContain('--metrics-bind-address=:9090');
    expect(args).toContain('--pod-selector=true');
    expect(args.at(-1)).toBe('--sync-period=1h');
  });
});
