// The operator's entry point as a real process against the local control plane.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startCluster, type Cluster } from './harness/controlplane.ts';
import { versions } from './harness/binaries.ts';

const main = new URL('../src/main.ts', import.meta.url).pathname;
let cluster: Cluster;

beforeAll(async () => {
  cluster = await startCluster();
}, 180_000);

afterAll(async () => {
  await cluster.stop();
});

describe('outrigger command', () => {
  it('connects, logs the server version as JSON, and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [
        main,
        `--kubeconfig=${cluster.kubeconfigPath}`,
        '--metrics-bind-address=0',
        '--health-probe-bind-address=0',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    const lines: Record<string, unknown>[] = [];
    const connected = new Promise<Record<string, unknown>>((resolve, reject) => {
      const rl = createInterface({ input: child.stderr });
      rl.on('line', (line) => {
        const entry = JSON.parse(line) as Record<string, unknown>;
        lines.push(entry);
        if (entry.msg === 'connected to the API server') resolve(entry);
      });
      child.on('exit', (code) => {
        reject(new Error(`exited early with ${String(code)}: ${JSON.stringify(lines)}`));
      });
    });
    const entry = await connected;
    expect(entry).toMatchObject({ level: 'info', msg: 'connected to the API server' });
    expect(typeof entry.ts).toBe('string');
    if (!cluster.existing) expect(entry.gitVersion).toBe(versions.KUBERNETES_VERSION);

    // Still running a moment later: only the signal may end it.
    await delay(500);
    expect(child.exitCode).toBeNull();
    // 'close' (not 'exit') fires after stderr is drained, so every log line has been read.
    const exit = new Promise<number | null>((resolve) => child.on('close', resolve));
    child.kill('SIGTERM');
    expect(await exit).toBe(0);
    expect(lines.at(-1)?.msg).toBe('received a shutdown signal; exiting');
  }, 60_000);

  it('rejects a bad flag with one line on stderr and exit status 2', () => {
    const r = spawnSync(process.execPath, [main, '--selector-mode=Not_A_Namespace'], {
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('invalid value "Not_A_Namespace" for --selector-mode');
  });

  it('prints its version', () => {
    const r = spawnSync(process.execPath, [main, '--version'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^outrigger \d+\.\d+\.\d+/);
  });
});
