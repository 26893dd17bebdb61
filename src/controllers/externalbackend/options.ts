// What the ExternalBackend controller is built from. Every part it talks to is one of outrigger's
// own interfaces, so that a unit test can build it from fakes: the caches (what it reads of an
// informer), the probe scheduler and resolver (built by setup.ts, see wiring.ts), the writer
// and the clock.
import type { V1EndpointSlice, V1Endpoints } from '@kubernetes/client-node';
import type { CachedExternalBackend, CachedPolicy } from '../../api/resources.ts';
import type { CachedNamespace } from '../../runtime/transforms.ts';
import type { Resolution } from '../../dns/resolution.ts';
import type { Target } from '../../health/scheduler.ts';
import type { AddressHealth } from '../../health/state.ts';
import type { DenyList } from '../../net/denylist.ts';
import type {
  CachedObject,
  CachedPod,
  CachedProbeSource,
  CachedService,
} from '../../runtime/cached.ts';
import type { Clock } from '../../runtime/clock.ts';
import type { EventRecorder } from '../../runtime/events.ts';
import type { Informer } from '../../runtime/informer.ts';
import type { Logger } from '../../runtime/log.ts';
import type { Metrics } from '../../runtime/metrics.ts';
import type { BackendWriter } from './writer.ts';
import type { GatherSources } from './gather.ts';

/** What the controller reads of an informer, and is told by it. */
export type Cache<T extends CachedObject> = Pick<
  Informer<T>,
  | 'get'
  | 'list'
  | 'addHandlers'
  | 'hasSynced'
  | 'hasSyncedNamespace'
  | 'failure'
  | 'onFailureChange'
>;

/** The probe scheduler as the controller uses it (health/scheduler.ts's ProbeScheduler). */
export interface ProbeTargets {
  upsert(target: Target): void;
  remove(key: string): void;
  health(key: string): AddressHealth | undefined;
  stop(): Promise<void>;
}

/** The resolver of spec.dnsNames as the controller uses it (dns/resolver.ts's NameResolver). */
export interface Names {
  want(owner: string, names: readonly string[]): void;
  get(name: string): Resolution | undefined;
  stop(): Promise<void>;
}

export interface ExternalBackendControllerOptions {
  readonly backends: Cache<CachedExternalBackend>;
  readonly services: Cache<CachedService>;
  readonly endpoints: Cache<V1Endpoints>;
  /** Only the slices outrigger manages (label-selected watch). */
  readonly slices: Cache<V1EndpointSlice>;
  /**
   * Pods, where a backend selects them (and selector mode's scope); undefined when neither
   * spec.podSelector is served nor selector mode runs (then no pods are watched at all).
   */
  readonly pods: Cache<CachedPod> | undefined;
  /** Whether spec.podSelector is served (--pod-selector); default: whenever pods is given. */
  readonly podSelector?: boolean;
  /**
   * The ClusterRole a namespace binds to let checks read its Secrets and ConfigMaps
   * (--health-check-reader-role), named in the status of a check refused that read.
   */
  readonly healthCheckReaderRole?: string;
  /** The ServiceAccount outrigger runs as ("<namespace>:<name>"), when known, for that hint. */
  readonly serviceAccount?: string;
  /** ExternalBackendPolicies (there is at most one, "cluster") and Namespaces, for the policy. */
  readonly policies: Cache<CachedPolicy>;
  readonly namespaces: Cache<CachedNamespace>;
  /**
   * Secrets and ConfigMaps labelled for health checks (probeRefLabel), in the namespaces whose
   * backends name one: what checks read their CA bundles and header values from.
   */
  readonly secrets: Cache<CachedProbeSource>;
  readonly configMaps: Cache<CachedProbeSource>;
  /** Most health-check targets one namespace may have. */
  readonly maxProbeTargetsPerNamespace: number;
  /** A certificate expiring within this long makes CertificateExpiringSoon True. */
  readonly certificateWarningMs: number;
  /** Most endpoints in one EndpointSlice (--max-endpoints-per-slice). */
  readonly maxEndpointsPerSlice: number;
  /**
   * After a status write, further ones for the same backend wait this long, so that the address
   * transitions of a burst (a subnet going dark) make one write and one Event per reason. Endpoints
   * and slices are never held back; a spec change (new generation) is written at once.
   */
  readonly statusBatchMs: number;
  readonly writer: BackendWriter;
  readonly events: EventRecorder;
  /** The current deny list; it changes as cluster ranges come and go (call enqueueAll then). */
  readonly denyList: Pick<DenyList, 'denies' | 'nodeAddress'>;
  /** Runs the backends' health checks; its results wake their backends (see wiring.ts). */
  readonly scheduler: ProbeTargets;
  /** Resolves spec.dnsNames; a changed answer wakes its backends (see wiring.ts). */
  readonly resolver: Names;
  readonly workers: number;
  /** The leader's quorum of probers (see gather.ts); absent: its own checks decide. */
  readonly quorum?: NonNullable<GatherSources['quorum']>;
  /**
   * A standby of a quorum: it checks the backends assigned to it and reports what it sees, and
   * writes nothing else (no Service, Endpoints, slices, status, Events or backend metrics).
   */
  readonly standby?: StandbyRole;
  readonly inScope: (namespace: string) => boolean;
  readonly log: Logger;
  readonly metrics: Metrics;
  /**
   * The time every decision compares with, including the informers' failure timestamps (give
   * the informers the same clock). The real clock by default.
   */
  readonly clock?: Clock;
}

export interface StandbyRole {
  /**
   * Whether this replica checks the backend (quorum/vote.ts assignProbers), which asks for at
   * most `maxProbers` probers, the leader included (spec.healthCheck.maxProbers).
   */
  assigned(backendKey: string, maxProbers: number | undefined): boolean;
  /** What it sees of the backend: the addresses failing; undefined when it does not check it. */
  report(backendKey: string, unhealthy: readonly string[] | undefined): void;
}
