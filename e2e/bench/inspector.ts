// A client of the V8 inspector of a process started with --inspect=127.0.0.1:<port>: the
// benchmark asks it for a full GC and the heap left after it (what the process really keeps, as
// opposed to RSS, which also counts what V8 has not collected yet), and for a CPU profile of a
// window (a readiness churn). Only ever on loopback, and only in the benchmark.

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

  close(): void {
    for (const p of this.pending.values()) p.reject(new Error('inspector closed'));
    this.pending.clear();
    this.ws.close();
  }
}
