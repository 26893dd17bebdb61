import { spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  /** Resolves with the exit code (or the signal name) once the process has ended. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
}

/** True while a process (or, with a negative pid, a process group) exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/**
 * Starts long-running binaries, each in its own process group with its output in `dir/logs`, and
 * records their pids in `dir/pids` so that they can be stopped later — by this object, by another
 * process (`cluster:down`), or by the reaper when the process that started them dies.
 */
export class ProcessGroup {
  private readonly procs: ManagedProcess[] = [];
  private reaper: ChildProcess | undefined;

  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    mkdirSync(join(dir, 'logs'), { recursive: true });
  }

  get pidFile(): string {
    return join(this.dir, 'pids');
  }

  /**
   * Starts a watchdog shell that waits for its stdin to close. Only this process holds the other
   * end, so it closes when this process exits for any reason, SIGKILL included; the watchdog then
   * kills every recorded process group and removes `dir`. A normal stop removes `dir` first, so the
   * watchdog finds nothing to kill (which also rules out signalling a reused pid).
   */
  reapOnExit(): void {
    if (this.reaper) return;
    const script = [
      'cat >/dev/null 2>&1',
      '[ -d "$1" ] || exit 0',
      'pids=$(cat "$1/pids" 2>/dev/null)',
      'for p in $pids; do kill -TERM "-$p" 2>/dev/null; done',
      'sleep 3',
      'for p in $pids; do kill -KILL "-$p" 2>/dev/null; done',
      'rm -rf "$1"',
    ].join('\n');
    const reaper = spawn('sh', ['-c', script, 'outrigger-reaper', this.dir], {
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    reaper.unref();
    // The pipe must not keep this process's event loop alive.
    (reaper.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    this.reaper = reaper;
  }

  start(
    name: string,
    bin: string,
    args: readonly string[],
    env?: NodeJS.ProcessEnv,
  ): ManagedProcess {
    const logPath = join(this.dir, 'logs', `${name}.log`);
    const fd = openSync(logPath, 'a');
    const child = spawn(bin, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...env },
    });
    closeSync(fd);
    const pid = child.pid;
    if (pid === undefined) throw new Error(`could not start ${name} (${bin})`);
    child.unref();
    appendFileSync(this.pidFile, `${pid}\n`);
    let done = false;
    const exited = new Promise<number | string>((resolve) => {
      child.on('exit', (code, signal) => {
        done = true;
        resolve(code ?? signal ?? 'unknown');
      });
    });
    const proc: ManagedProcess = { name, pid, logPath, exited, hasExited: () => done };
    this.procs.push(proc);
    return proc;
  }

  /** SIGTERM, then SIGKILL after `graceMs`, to the given process's whole group. */
  async stop(proc: ManagedProcess, graceMs = 5000): Promise<void> {
    signalGroup(proc.pid, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (isAlive(-proc.pid) && Date.now() < deadline) await delay(50);
    if (isAlive(-proc.pid)) signalGroup(proc.pid, 'SIGKILL');
    while (isAlive(-proc.pid)) await delay(20);
    const i = this.procs.indexOf(proc);
    if (i >= 0) this.procs.splice(i, 1);
  }

  /** SIGKILL to the process's whole group, at once: a crash, not a shutdown. */
  async kill(proc: ManagedProcess): Promise<void> {
    signalGroup(proc.pid, 'SIGKILL');
    while (isAlive(-proc.pid)) await delay(20);
    const i = this.procs.indexOf(proc);
    if (i >= 0) this.procs.splice(i, 1);
  }

  /** Stops everything in reverse start order and removes `dir` unless `keepDir`. */
  async stopAll(opts: { keepDir?: boolean } = {}): Promise<void> {
    for (const p of [...this.procs].reverse()) await this.stop(p);
    if (!opts.keepDir) rmSync(this.dir, { recursive: true, force: true });
    // A kept directory would still name the stopped pids to the reaper (which may be reused).
    else writeFileSync(this.pidFile, '');
    this.reaper?.stdin?.end();
    this.reaper = undefined;
  }
}

/** Stops the process groups recorded in `dir/pids` by an earlier (possibly dead) process. */
export async function stopRecorded(dir: string, graceMs = 5000): Promise<number> {
  let pids: number[];
  try {
    pids = readFileSync(join(dir, 'pids'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map(Number)
      .reverse();
  } catch {
    pids = [];
  }
  for (const pid of pids) signalGroup(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (pids.some((p) => isAlive(-p)) && Date.now() < deadline) await delay(50);
  for (const pid of pids) if (isAlive(-pid)) signalGroup(pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  return pids.length;
}

/** The last `lines` lines of a log file, for error messages. */
export function tail(path: string, lines = 20): string {
  try {
    return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Waits until `check` holds, failing at once with the end of the process's log when it exits
 * first, and with the same when `timeoutMs` passes.
 */
export async function until(
  what: string,
  proc: ManagedProcess,
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (proc.hasExited())
      throw new Error(`${proc.name} exited before ${what}:\n${tail(proc.logPath, 40)}`);
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}; ${proc.name} said:\n${tail(proc.logPath, 40)}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}
