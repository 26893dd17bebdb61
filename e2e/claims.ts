// Every figure the docs state that an e2e test measures, with the bound the test holds it to.
//
// The docs say what a user may expect ("a dead server leaves in 1.1–1.4 s"); a test that allowed
// 20 s would stay green while that sentence became false. So each such sentence is an entry here:
// `says` is the exact text in `doc` (a unit test fails when the doc no longer contains it, so the
// two change together), `bound` is what a run may measure before the claim counts as broken, and
// `why` derives the bound from the mechanism plus the margin a loaded 2-core machine needs. Tests
// call `claim(id, measured)` (e2e/harness/claims.ts), which fails above the bound and records the
// figure; the e2e summary prints every figure against its claim, and `npm run results -- claims`
// writes them to docs/results/claims.md with the date and commit.
//
// Figures that benchmarks print (CPU, RSS, latency percentiles, the soak, the fault matrix) are not
// here: their pages are written by the benchmark from one run, with its date and commit.

export type Unit = 'ms' | 'MiB' | 'count';

export interface Claim {
  /** The file stating the figure, relative to the repository root. */
  readonly doc: string;
  /** The exact words stating it there. */
  readonly says: string;
  /** The figure as stated, in `unit` (the upper end where the doc gives a range). */
  readonly stated: number;
  readonly unit: Unit;
  /** A measurement above this fails the test. */
  readonly bound: number;
  /** How the bound follows from the mechanism, and the margin added for this machine. */
  readonly why: string;
  /** The e2e file that measures it. */
  readonly test: string;
}

export const claims = {
  'dead-server-unready': {
    doc: 'docs/guide/status.md',
    says: 'measured by the e2e suite at 1.1–1.7 s with 1 s × 2',
    stated: 1700,
    unit: 'ms',
    bound: 4000,
    why: 'the second failed check comes at most interval × threshold (2 s) after the kill, a refused connect fails at once (timeoutSeconds 1 s covers a slow one); +1 s for a reconcile and a slice write on a loaded 2-core machine',
    test: 'e2e/externalbackend.e2e.test.ts',
  },
  'dns-change-published': {
    doc: 'docs/guide/dns-drain-zones.md',
    says: 'a changed answer is published a median 0.9–1.0 s (max 1.05 s)',
    stated: 1050,
    unit: 'ms',
    bound: 2500,
    why: 'the next lookup comes one record TTL (1 s) after the last; +1.5 s for the lookup, a reconcile and the writes on a loaded machine (the max of five changes is held to it)',
    test: 'e2e/dns.e2e.test.ts',
  },
  'node-range-withdrawn': {
    doc: 'docs/guide/policy.md',
    says: '(measured: 0.2 s)',
    stated: 200,
    unit: 'ms',
    bound: 2000,
    why: 'a Node watch event and one reconcile of each backend it affects, no timer in between; +1.8 s on a loaded machine',
    test: 'e2e/hostile.e2e.test.ts',
  },
  'policy-narrowed-withdrawn': {
    doc: 'docs/guide/policy.md',
    says: 'withdraws what only it allowed, within 0.1–0.6 s',
    stated: 600,
    unit: 'ms',
    bound: 3000,
    why: 'a policy watch event, the grants compiled again, one reconcile per backend in scope; +2.4 s on a loaded machine (the leader also rewrites outrigger-effective meanwhile)',
    test: 'e2e/hostile.e2e.test.ts',
  },
  'noisy-neighbour-delay': {
    doc: 'docs/guide/policy.md',
    says: 'detects a dead server as fast beside 150 hung addresses with 60 s timeouts as alone',
    stated: 0,
    unit: 'ms',
    bound: 1500,
    why: 'the figure is the canary’s detection time beside the neighbour minus alone; the phase of the check after the kill is random within one interval (1 s), +0.5 s on a loaded machine',
    test: 'e2e/hostile.e2e.test.ts',
  },
  'burst-other-tenant-waits': {
    doc: 'docs/guide/policy.md',
    says: "let another tenant's new backend through after 7 of them",
    stated: 7,
    unit: 'count',
    bound: 12,
    why: 'turns by namespace: the reconciles in flight (--concurrent-externalbackend-syncs, 5) and a turn or two; first come first served it waited for 48, so 12 still tells the two apart',
    test: 'e2e/hostile.e2e.test.ts',
  },
  'seed-migration-failed-calls': {
    doc: 'docs/guide/migration.md',
    says: '**no etcdctl call failed**',
    stated: 0,
    unit: 'count',
    bound: 0,
    why: 'outrigger’s slices carry the members before the hand-written Endpoints is taken over, so kube-proxy always has the three members; any failed call breaks the claim',
    test: 'e2e/seed-migration.e2e.test.ts',
  },
  'leader-killed-takeover': {
    doc: 'docs/operations/high-availability.md',
    says: 'a leader killed with SIGKILL is replaced after **4.5–4.8 s**',
    stated: 4800,
    unit: 'ms',
    bound: 6000,
    why: 'the lease (4 s) must run out from the last renewal, then the standby’s next retry (0.5 s) takes it and the test sees it (about 0.3 s here); +1.2 s on a loaded machine',
    test: 'e2e/leader.e2e.test.ts',
  },
  'leader-stopped-takeover': {
    doc: 'docs/operations/high-availability.md',
    says: 'its standby leads after **0.4–0.6 s**',
    stated: 600,
    unit: 'ms',
    bound: 1500,
    why: 'the lease is released on SIGTERM, so the standby takes it at its next retry (0.5 s); +1 s on a loaded machine',
    test: 'e2e/leader.e2e.test.ts',
  },
  'leader-unreachable-exit': {
    doc: 'docs/operations/high-availability.md',
    says: 'a leader whose API server is unreachable exits after **2.4–3.0 s**',
    stated: 3000,
    unit: 'ms',
    bound: 3900,
    why: 'the renew deadline (3 s) from the last renewal, checked every retry period (0.5 s); the bound is the invariant behind it: under the lease (4 s), so that two replicas never write at once',
    test: 'e2e/leader.e2e.test.ts',
  },
  'leader-cut-off-last-write': {
    doc: 'docs/operations/high-availability.md',
    says: 'the last write 2.0–2.9 s after the leader was cut off from its Lease',
    stated: 2900,
    unit: 'ms',
    bound: 3500,
    why: 'every write first checks that the lease was renewed within the renew deadline (3 s), so none may start later; +0.5 s for a write that passed the check and waits for a loaded event loop or is on the wire, still under the lease (4 s) a standby must wait out',
    test: 'e2e/leader.e2e.test.ts',
  },
  'image-compressed-size': {
    doc: 'docs/operations/image.md',
    says: '52.3 MiB compressed',
    stated: 52.3,
    unit: 'MiB',
    bound: 57.5,
    why: 'the stated size + 10%: a larger image means a dependency or file list changed and the docs must say so',
    test: 'e2e/image.e2e.test.ts',
  },
  'image-unpacked-size': {
    doc: 'docs/operations/image.md',
    says: '175.8 MiB unpacked',
    stated: 175.8,
    unit: 'MiB',
    bound: 193.4,
    why: 'the stated size + 10%, as for the compressed layer',
    test: 'e2e/image.e2e.test.ts',
  },
  'container-ready': {
    doc: 'docs/operations/image.md',
    says: '1.1–2.1 s from `runc run` to `/readyz`',
    stated: 2100,
    unit: 'ms',
    bound: 6000,
    why: 'Node’s start, one list per informer and the first lease attempt, with no timer in between; +4 s because two containers and the rest of the suite share 2 cores',
    test: 'e2e/image.e2e.test.ts',
  },
  'node-schedulable': {
    doc: 'docs/development.md',
    says: 'the node is schedulable 5–8 s after it starts',
    stated: 8000,
    unit: 'ms',
    bound: 20000,
    why: 'containerd, CoreDNS and kube-proxy started, images imported and the kubelet’s first status; +13 s because image import is disk-bound and varies most on a shared machine',
    test: 'e2e/node.e2e.test.ts',
  },
  'node-helm-install-ready': {
    doc: 'docs/development.md',
    says: '`helm install --wait` has two Ready replicas after 7–15 s',
    stated: 15300,
    unit: 'ms',
    bound: 30000,
    why: 'scheduling and container start (about 3 s), then /readyz at the kubelet’s first probe or one periodSeconds (10 s) later when the caches had not synced yet; +15 s on a loaded machine',
    test: 'e2e/node.e2e.test.ts',
  },
  'node-dead-server-out': {
    doc: 'docs/development.md',
    says: 'leaves kube-proxy’s rules 0.3–1.1 s after it dies',
    stated: 1100,
    unit: 'ms',
    bound: 4000,
    why: 'the test backend is checked every second and is unhealthy after one failure (1 s); kube-proxy applies a slice change at its next sync, at most its min-sync-period (1 s) later; +2 s for a reconcile, a write and kube-proxy’s sync on a loaded machine',
    test: 'e2e/node.e2e.test.ts',
  },
  'node-leader-killed-dead-server-out': {
    doc: 'docs/development.md',
    says: 'with the leader’s process SIGKILLed at the same moment, 14–18 s',
    stated: 18000,
    unit: 'ms',
    bound: 25000,
    why: 'the chart’s 15 s lease must run out, the standby’s next retry (2 s) takes it, then one check and a write; +5 s on a loaded machine',
    test: 'e2e/node.e2e.test.ts',
  },
  'node-leader-pod-deleted': {
    doc: 'docs/development.md',
    says: 'the other replica leads within 0.4–1.8 s',
    stated: 1800,
    unit: 'ms',
    bound: 6000,
    why: 'a deleted pod gets SIGTERM and releases the lease; the standby takes it at its next retry (2 s); +2 s for the kubelet’s kill and a loaded machine',
    test: 'e2e/node.e2e.test.ts',
  },
  'ingress-last-failure': {
    doc: 'docs/data-path.md',
    says: 'the last failed request 1.1–1.7 s after the death',
    stated: 1719,
    unit: 'ms',
    bound: 7000,
    why: 'detection (interval 1 s × unhealthyThreshold 2 + timeout 1 s = 3 s) + 4 s for the slice write and Traefik’s provider throttle (2 s) and reload',
    test: 'e2e/datapath-ingress.e2e.test.ts',
  },
  'ingress-server-back': {
    doc: 'docs/data-path.md',
    says: 'it serves through the Ingress again 1.3–2.3 s after it comes back',
    stated: 2300,
    unit: 'ms',
    bound: 7000,
    why: 'interval 1 s × healthyThreshold 2 + timeout 1 s = 3 s, + 4 s for the slice write and Traefik’s throttle and reload',
    test: 'e2e/datapath-ingress.e2e.test.ts',
  },
  'failopen-first-back': {
    doc: 'docs/data-path.md',
    says: 'The first server back answered 180–290 ms after it returned',
    stated: 290,
    unit: 'ms',
    bound: 2000,
    why: 'failing open keeps both addresses published, so no outrigger write is needed: the server listening again and Traefik’s next pick of it (round robin over two; the test asks every 50 ms); +1.7 s on a loaded machine',
    test: 'e2e/datapath-ingress.e2e.test.ts',
  },
  'etcd-last-connection': {
    doc: 'docs/data-path.md',
    says: '| 1110–1767 ms',
    stated: 1767,
    unit: 'ms',
    bound: 6000,
    why: 'detection (interval 1 s × unhealthyThreshold 2 + timeout 1 s = 3 s) + 3 s for the slice write and kube-proxy’s sync (at least its min-sync-period, 1 s, apart)',
    test: 'e2e/datapath-etcd.e2e.test.ts',
  },
  'etcd-headless-gone': {
    doc: 'docs/data-path.md',
    says: '| 1393–1769 ms',
    stated: 1769,
    unit: 'ms',
    bound: 6000,
    why: 'detection (3 s, as above) + 3 s for the slice write and CoreDNS’s view of the slices',
    test: 'e2e/datapath-etcd.e2e.test.ts',
  },
} as const satisfies Record<string, Claim>;

export type ClaimId = keyof typeof claims;
