// A standby's ProberReport: what its own checks see, kept as it changes and written to the API
// server by server-side apply, batched (one write per batch window, however many verdicts
// changed) and renewed before its lease runs out. The only object a standby writes.
import { apiVersion, group, version } from '../../api/externalbackend.ts';
import { proberReportKind, proberReportPlural } from '../../api/proberreport.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Rest } from '../../runtime/rest.ts';
import { objectPath } from '../../runtime/rest.ts';
import { applyPatch } from '../externalbackend/writer.ts';

export interface ReportWriterOptions {
  readonly rest: Rest;
  readonly namespace: string;
  /** The replica's pod name: the report's name (admission holds it to the pod's token). */
  readonly name: string;
  readonly nodeName?: string | undefined;
  readonly zone: () => string | undefined;
  readonly leaseMs: number;
  /** A report unchanged for this long is written again with a new renewTime. */
  readonly renewMs: number;
  /** Changes within this window make one write. */
  readonly batchMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  /** Counts each write by why it was made ("change" or "renew"). */
  readonly onWrite?: (why: 'change' | 'renew') => void;
}

export class ReportWriter {
  private readonly o: ReportWriterOptions;
  private readonly backends = new Map<string, readonly string[]>();
  private dirty = false;
  private writtenAt = Number.NEGATIVE_INFINITY;
  private wake: (() => void) | undefined;
  private failures = 0;
  private retryAt = 0;

  constructor(o: ReportWriterOptions) {
    this.o = o;
  }

  /** What this replica sees of one backend; undefined: it does not check the backend. */
  set(backendKey: string, unhealthy: readonly string[] | undefined): void {
    const before = this.backends.get(backendKey);
    if (unhealthy === undefined) {
      if (before === undefined) return;
      this.backends.delete(backendKey);
    } else {
      const sorted = [...unhealthy].sort();
      if (before?.join() === sorted.join()) return;
      this.backends.set(backendKey, sorted);
    }
    this.dirty = true;
    this.wake?.();
  }

  /** The report as applied: spec only (status is the leader's). */
  body(): Record<string, unknown> {
    const zone = this.o.zone();
    return {
      apiVersion,
      kind: proberReportKind,
      metadata: { name: this.o.name, namespace: this.o.namespace },
      spec: {
        ...(this.o.nodeName ? { nodeName: this.o.nodeName } : {}),
        ...(zone !== undefined ? { zone } : {}),
        renewTime: new Date(this.o.clock.now()).toISOString(),
        leaseDurationSeconds: Math.ceil(this.o.leaseMs / 1000),
        backends: [...this.backends]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([name, unhealthy]) => (unhealthy.length > 0 ? { name, unhealthy } : { name })),
      },
    };
  }

  private path(): string {
    return objectPath(
      `/apis/${group}/${version}`,
      proberReportPlural,
      this.o.namespace,
      this.o.name,
    );
  }

  /**
   * Writes when something changed (after the batch window) or the lease needs renewing; after a
   * failure, not before its backoff (1 s, 2 s, 4 s ... up to the renewal period), so that a report
   * the API server refuses (too large, say) is not sent again every second.
   */
  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const now = this.o.clock.now();
      const due = Math.max(
        this.retryAt,
        this.dirty
          ? Math.min(this.writtenAt + this.o.batchMs, this.writtenAt + this.o.renewMs)
          : this.writtenAt + this.o.renewMs,
      );
      if (due <= now) {
        await this.write(signal);
        continue;
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, due - now);
        const onAbort = (): void => {
          done();
        };
        function done(): void {
          clearTimeout(t);
          signal.removeEventListener('abort', onAbort);
          resolve();
        }
        signal.addEventListener('abort', onAbort, { once: true });
        this.wake = done;
      });
      this.wake = undefined;
    }
  }

  private async write(signal: AbortSignal): Promise<void> {
    const why = this.dirty ? 'change' : 'renew';
    this.dirty = false;
    try {
      await this.o.rest.request('PATCH', this.path(), {
        body: JSON.stringify(this.body()),
        contentType: applyPatch,
        signal,
        query: { fieldManager: 'outrigger-prober', force: 'true' },
      });
      this.writtenAt = this.o.clock.now();
      this.failures = 0;
      this.retryAt = 0;
      this.o.onWrite?.(why);
    } catch (err) {
      if (why === 'change') this.dirty = true;
      this.o.log.warn(
        { err: String(err), report: this.o.name, failures: this.failures + 1 },
        'writing the prober report failed',
      );
      this.retryAt = this.o.clock.now() + Math.min(this.o.renewMs, 1000 * 2 ** this.failures);
      this.failures++;
    }
  }

  /** Removes the report (this replica leads now, or stops): its backends go to other standbys. */
  async remove(): Promise<void> {
    try {
      await this.o.rest.request('DELETE', this.path(), { signal: AbortSignal.timeout(5000) });
    } catch (err) {
      this.o.log.info(
        { err: String(err), report: this.o.name },
        'removing the prober report failed; it expires',
      );
    }
  }
}
