// Health by a quorum of probers (--probers-per-address above 1), wired into the manager: the
// leader's view of the standbys' reports, a standby's role and report, and the leader's watch over
// partitions (status of each report, an Event, a metric). quorum/vote.ts holds the rules.
import { hostname } from 'node:os';
import { group, version } from '../api/externalbackend.ts';
import { proberReportKind, proberReportPlural } from '../api/proberreport.ts';
import type { CachedProberReport } from '../api/resources.ts';
import type { StandbyRole } from '../controllers/externalbackend/options.ts';
import type { ExternalBackendController } from '../controllers/externalbackend/controller.ts';
import { ReportWriter } from '../controllers/quorum/report.ts';
import { QuorumView } from '../controllers/quorum/view.ts';
import { assignProbers } from '../quorum/vote.ts';
import { realClock } from '../runtime/clock.ts';
import type { EventRecorder } from '../runtime/events.ts';
import type { Informer } from '../runtime/informer.ts';
import type { Logger } from '../runtime/log.ts';
import type { Metrics } from '../runtime/metrics.ts';
import { objectPath, type Rest } from '../runtime/rest.ts';

/** A report is renewed this often and counts this long after its last renewal. */
export const reportRenewMs = 10_000;
export const reportLeaseMs = 30_000;
/** Changes of what a standby sees within this window make one write. */
export const reportBatchMs = 200;
const zoneLabel = 'topology.kubernetes.io/zone';

export interface QuorumContext {
  readonly rest: Rest;
  readonly reports: Informer<CachedProberReport>;
  readonly namespace: string;
  readonly podName: string;
  readonly nodeName: string;
  readonly probersPerAddress: number;
  readonly events: EventRecorder;
  readonly log: Logger;
  readonly metrics: Metrics;
}

/** This replica's pod name and Node: flags, then the downward API's usual variables. */
export function podIdentity(flags: { podName: string; nodeName: string }): {
  podName: string;
  nodeName: string;
} {
  return {
    podName: nonEmpty(flags.podName) ?? nonEmpty(process.env.POD_NAME) ?? hostname(),
    nodeName: nonEmpty(flags.nodeName) ?? nonEmpty(process.env.NODE_NAME) ?? '',
  };
}

const nonEmpty = (s: string | undefined): string | undefined => (s === '' ? undefined : s);

export class Quorum {
  readonly view: QuorumView;
  readonly standby: StandbyRole;
  private readonly c: QuorumContext;
  private readonly writer: ReportWriter;
  private zone: string | undefined;
  private leader: ExternalBackendController | undefined;
  private partitioned = new Set<string>();
  /** The probers outrigger_prober_partitioned has a series for. */
  private withSeries = new Set<string>();

  constructor(c: QuorumContext) {
    this.c = c;
    const now = (): number => Date.now();
    this.view = new QuorumView({
      reports: c.reports,
      self: c.podName,
      probersPerAddress: c.probersPerAddress,
      zone: () => this.zone,
      now,
      ownTargets: () => this.leader?.ownTargets() ?? [],
      ownHealth: (t) => this.leader?.ownHealth(t),
    });
    this.writer = new ReportWriter({
      rest: c.rest,
      namespace: c.namespace,
      name: c.podName,
      nodeName: c.nodeName,
      zone: () => this.zone,
      leaseMs: reportLeaseMs,
      renewMs: reportRenewMs,
      batchMs: reportBatchMs,
      clock: realClock,
      log: c.log,
      onWrite: (why) => {
        c.metrics.proberReportWrites.inc({ reason: why });
      },
    });
    const failing = new Map<string, number>();
    this.standby = {
      assigned: (key, maxProbers) =>
        assignProbers(
          key,
          this.liveStandbys(),
          Math.min(c.probersPerAddress, maxProbers ?? c.probersPerAddress) - 1,
        ).includes(c.podName),
      report: (key, unhealthy) => {
        if (unhealthy === undefined) failing.delete(key);
        else failing.set(key, unhealthy.length);
        c.metrics.proberFailingAddresses.set([...failing.values()].reduce((a, b) => a + b, 0));
        this.writer.set(key, unhealthy);
      },
    };
  }

  /** The standbys that may be assigned a backend: this one and those whose reports are fresh. */
  private liveStandbys(): string[] {
    const now = Date.now();
    const live = this.c.reports
      .list()
      .filter((r) => r.report !== undefined && r.report.expiresAt > now)
      .map((r) => r.metadata?.name ?? '');
    return [...new Set([this.c.podName, ...live])];
  }

  /** The zone of this replica's Node, read once (absent: no zones in status). */
  async readZone(): Promise<void> {
    if (this.c.nodeName === '') return;
    try {
      const list = await this.c.rest.request<{
        items?: { metadata?: { labels?: Record<string, string> } }[];
      }>('GET', '/api/v1/nodes', { query: { fieldSelector: `metadata.name=${this.c.nodeName}` } });
      this.zone = list.items?.[0]?.metadata?.labels?.[zoneLabel];
    } catch (err) {
      this.c.log.warn(
        { err: String(err), node: this.c.nodeName },
        'reading the zone of this Node failed',
      );
    }
  }

  /**
   * Wakes what a report change concerns: the leader's backends whose ballots changed, and every
   * backend of a standby (the assignment may have moved).
   */
  watch(wake: { leader: (key: string) => void; standby: () => void }): void {
    const changed = (a?: CachedProberReport, b?: CachedProberReport): void => {
      const before = a?.report?.backends ?? new Map<string, ReadonlySet<string>>();
      const after = b?.report?.backends ?? new Map<string, ReadonlySet<string>>();
      for (const key of new Set([...before.keys(), ...after.keys()])) {
        const x = before.get(key);
        const y = after.get(key);
        if (x?.size !== y?.size || [...(x ?? [])].some((ip) => y?.has(ip) !== true))
          wake.leader(key);
      }
      // A report that comes or goes moves the assignment; expiry is watched by the loops.
      if (a === undefined || b === undefined) wake.standby();
    };
    this.c.reports.addHandlers({
      add: (r) => {
        changed(undefined, r);
      },
      update: (a, b) => {
        changed(a, b);
      },
      delete: (r) => {
        changed(r, undefined);
      },
    });
  }

  /**
   * While this replica does not lead: its standby controller checks what is assigned to it and
   * the report goes out; on return (the signal, i.e. leadership or shutdown) both stop and the
   * report is removed, so that its backends go to the other standbys at once.
   */
  async runStandby(controller: ExternalBackendController, signal: AbortSignal): Promise<void> {
    // Already leading (the lease came before the caches): nothing to check as a standby.
    if (signal.aborted) return;
    const running = Promise.all([controller.run(), this.writer.run(signal)]);
    // A standby's report expires without an event: the assignment is looked at every second.
    let members = this.liveStandbys().join();
    const membership = setInterval(() => {
      const now = this.liveStandbys().join();
      if (now !== members) controller.enqueueAll();
      members = now;
    }, 1000);
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else
        signal.addEventListener(
          'abort',
          () => {
            resolve();
          },
          { once: true },
        );
    });
    clearInterval(membership);
    await controller.shutDown();
    await running;
    // Not waited for: a leader must not wait on an API server that may be why it leads now. The
    // report expires in any case; the removal only hands its backends over sooner.
    this.removing = this.writer.remove();
  }

  /** The removal of this replica's report, if one was started (waited for at shutdown). */
  removing: Promise<void> = Promise.resolve();

  /**
   * While leading: which probers are partitioned, looked at every second; a change wakes every
   * backend and is said in the report's status, an Event and a metric.
   */
  async runLeader(controller: ExternalBackendController, signal: AbortSignal): Promise<void> {
    this.leader = controller;
    let reporting = '';
    while (!signal.aborted) {
      await new Promise((r) => setTimeout(r, 1000));
      // A report that expires brings no event: its ballots leave the decisions now.
      const fresh = this.view
        .fresh()
        .map((r) => r.metadata?.name ?? '')
        .sort()
        .join();
      if (fresh !== reporting) controller.enqueueAll();
      reporting = fresh;
      const { set, dissent } = this.view.partitioned();
      const probers = new Set([this.c.podName, ...fresh.split(',').filter((p) => p !== '')]);
      // A replica whose report went (deleted, rescheduled) leaves the metric too: a series stuck
      // at 1 would keep the alert firing for a replica that no longer exists.
      for (const p of this.withSeries)
        if (!probers.has(p)) this.c.metrics.proberPartitioned.remove({ prober: p });
      for (const p of probers)
        this.c.metrics.proberPartitioned.set({ prober: p }, set.has(p) ? 1 : 0);
      this.withSeries = probers;
      const before = this.partitioned;
      if (before.size === set.size && [...set].every((p) => before.has(p))) continue;
      this.partitioned = new Set(set);
      controller.enqueueAll();
      for (const p of new Set([...before, ...set])) {
        const now = set.has(p);
        if (now === before.has(p)) continue;
        const d = dissent.get(p);
        const message = now
          ? `replica ${p} sees ${String(d?.alone ?? 0)} of the ${String(d?.shared ?? 0)} addresses it shares with other probers fail while they reach them: its view is left out of every decision until it agrees again`
          : `replica ${p} agrees with the other probers again: its view counts`;
        this.c.log.warn(
          { prober: p, partitioned: now, alone: d?.alone, shared: d?.shared },
          message,
        );
        // A report that is gone has no status to write and no object for an Event.
        if (p !== this.c.podName && probers.has(p)) await this.markReport(p, now, message);
      }
    }
    this.leader = undefined;
  }

  private async markReport(name: string, partitioned: boolean, message: string): Promise<void> {
    const ref = {
      apiVersion: `${group}/${version}`,
      kind: proberReportKind,
      namespace: this.c.namespace,
      name,
      uid: this.c.reports.get(this.c.namespace, name)?.metadata?.uid ?? '',
    };
    this.c.events.event(
      ref,
      partitioned ? 'Warning' : 'Normal',
      partitioned ? 'ProberPartitioned' : 'ProberRejoined',
      message,
    );
    try {
      await this.c.rest.request(
        'PATCH',
        `${objectPath(`/apis/${group}/${version}`, proberReportPlural, this.c.namespace, name)}/status`,
        {
          body: { status: { partitioned, message } },
          contentType: 'application/merge-patch+json',
        },
      );
    } catch (err) {
      this.c.log.info(
        { err: String(err), report: name },
        'writing the prober report status failed',
      );
    }
  }
}
