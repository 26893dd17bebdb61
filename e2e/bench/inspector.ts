// A client of the V8 inspector of a process started with --inspect=127.0.0.1:<port>: the
// benchmark asks it for a full GC and the heap left after it (what the process really keeps, as
// opposed to RSS, which also counts what V8 has not collected yet), and for a CPU profile of a
// window (a readiness churn), and for what a window allocated (the sampling heap profiler). Only
// ever on loopback, and only in the benchmark.

/** HeapProfiler.SamplingHeapProfile: a tree of call frames with the bytes each allocated itself. */
export interface AllocationNode {
  readonly callFrame: {
    readonly functionName: string;
    readonly url: string;
    readonly lineNumber: number;
  };
  readonly selfSize: number;
  readonly children: readonly AllocationNode[];
}

export interface AllocationProfile {
  readonly head: AllocationNode;
}

/** Every byte the profile sampled (an estimate of all that was allocated in its window). */
export function totalAllocated(profile: AllocationProfile): number {
  const walk = (n: AllocationNode): number => n.children.reduce((a, c) => a + walk(c), n.selfSize);
  return walk(profile.head);
}

/**
 * The functions that allocated most, with their callers' frame for context: bytes per function
 * (self), largest first. `url` is shortened to the part after node_modules/ or src/.
 */
export function topAllocators(
  profile: AllocationProfile,
  top = 15,
): { readonly where: string; readonly bytes: number }[] {
  const bytes = new Map<string, number>();
  const walk = (n: AllocationNode, parent: string): void => {
    const f = n.callFrame;
    const file = f.url.replace(/^.*\/(node_modules|src)\//, '').replace(/^file:\/\//, '');
    const here = `${f.functionName || '(anonymous)'} ${file}:${String(f.lineNumber + 1)}`;
    if (n.selfSize > 0) {
      const key = `${here} < ${parent}`;
      bytes.set(key, (bytes.get(key) ?? 0) + n.selfSize);
    }
    for (const c of n.children) walk(c, here);
  };
  walk(profile.head, '(root)');
  return [...bytes]
    .map(([where, b]) => ({ where, bytes: b }))
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, top);
}

interface Pending {
  resolve(v: unknown): void;
  reject(e: Error): void;
}

export class Inspector {
  private readonly pending = new Map<number, Pending>();
  private next = 1;

  private readonly ws: WebSocket;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.addEventListener('message', (ev: MessageEvent) => {
      const msg = JSON.parse(String(ev.data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
      };
      if (msg.id === undefined) return;
      const p = this.pending.get(msg.id);
      this.pending.delete(msg.id);
      if (msg.error !== undefined) p?.reject(new Error(msg.error.message));
      else p?.resolve(msg.result);
    });
  }

  static async connect(port: number, timeoutMs = 30_000): Promise<Inspector> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const list = (await (await fetch(`http://127.0.0.1:${String(port)}/json/list`)).json()) as {
          webSocketDebuggerUrl: string;
        }[];
        const url = list[0]?.webSocketDebuggerUrl;
        if (url === undefined) throw new Error('no inspector target');
        const ws = new WebSocket(url);
        await new Promise<void>((resolve, reject) => {
          ws.addEventListener('open', () => {
            resolve();
          });
          ws.addEventListener('error', () => {
            reject(new Error(`cannot open ${url}`));
          });
        });
        return new Inspector(ws);
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  send<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    const id = this.next++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve, reject });
      this.ws.send(JSON.stringify({ id, method, params }));
    });
  }

  /** The JS heap in use after a full, compacting collection (MiB). */
  async liveHeapMiB(): Promise<number> {
    await this.send('HeapProfiler.enable');
    await this.send('HeapProfiler.collectGarbage');
    const { usedSize } = await this.send<{ usedSize: number }>('Runtime.getHeapUsage');
    await this.send('HeapProfiler.disable');
    return usedSize / 2 ** 20;
  }

  /** Starts sampling every `intervalUs` µs; `stopProfile` returns the .cpuprofile object. */
  async startProfile(intervalUs = 1000): Promise<void> {
    await this.send('Profiler.enable');
    await this.send('Profiler.setSamplingInterval', { interval: intervalUs });
    await this.send('Profiler.start');
  }

  async stopProfile(): Promise<unknown> {
    const { profile } = await this.send<{ profile: unknown }>('Profiler.stop');
    await this.send('Profiler.disable');
    return profile;
  }

  /**
   * Starts V8's sampling heap profiler: a sample every `intervalBytes` allocated on average, kept
   * even once collected, so that `stopAllocations` tells what allocated, not what is left.
   */
  async startAllocations(intervalBytes = 16 * 1024): Promise<void> {
    await this.send('HeapProfiler.enable');
    await this.send('HeapProfiler.startSampling', {
      samplingInterval: intervalBytes,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
  }

  async stopAllocations(): Promise<AllocationProfile> {
    const { profile } = await this.send<{ profile: AllocationProfile }>(
      'HeapProfiler.stopSampling',
    );
    await this.send('HeapProfiler.disable');
    return profile;
  }

  close(): void {
    for (const p of this.pending.values()) p.reject(new Error('inspector closed'));
    this.pending.clear();
    this.ws.close();
  }
}
