// `npm run bench:protobuf`: would reading the API server in protobuf rather than JSON pay off for
// outrigger in Node? kube-controller-manager reads built-in kinds as
// application/vnd.kubernetes.protobuf; outrigger reads JSON (src/runtime/rest.ts). This loads the
// benchmark workload into a fresh local control plane, fetches the same Pods (one unpaged list,
// and pages of 500 as informers read them), Endpoints and a stream of pod watch events in both
// formats, then stops the control plane, so that nothing else runs on the cores while each body is
// decoded --reps times: to objects, and on to the narrow objects outrigger caches (the real
// transforms of src/runtime/transforms.ts). The protobuf side is protobufjs with the .proto files
// of the Kubernetes version the harness runs, read from the Go module cache at run time (they
// belong to another project and are not copied here). Prints a markdown table and writes
// --out/protobuf.json.
import { readFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { cpus, homedir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual, parseArgs } from 'node:util';
import v8 from 'node:v8';
import vm from 'node:vm';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import PQueue from 'p-queue';
import protobuf from 'protobufjs';
import { transformEndpoints, transformPod, type Raw } from '../../src/runtime/transforms.ts';
import { versions } from '../harness/binaries.ts';
import { startCluster, type Cluster } from '../harness/controlplane.ts';
import { provenance } from '../harness/provenance.ts';
import { load, podIP, podName, setPodReady, workload, type Workload } from './workload.ts';

const { values: args } = parseArgs({
  options: {
    pods: { type: 'string', default: '10000' },
    services: { type: 'string', default: '1000' },
    reps: { type: 'string', default: '5' },
    flips: { type: 'string', default: '1000' },
    out: { type: 'string' },
  },
});
const podsWanted = Number(args.pods);
const servicesWanted = Number(args.services);
const reps = Math.max(1, Number(args.reps));
const flipsWanted = Number(args.flips);
/** Body fetches are the API server's work, not Node's: fewer of them keep the run's CPU down. */
const fetchReps = Math.min(reps, 3);
const pageSize = 500;
/** Taken before anything runs, so that edits made meanwhile do not mark the result dirty. */
const origin = provenance();

function log(msg: string): void {
  process.stderr.write(`[protobuf ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

// A full collection between samples, without asking for --expose-gc on the command line (the npm
// script runs plain `node`): the flag is set at run time, and only a new context sees `gc`.
v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

// ---------------------------------------------------------------------------------------------
// The schema: core/v1 and what it imports, resolved to the module cache of the staging version
// that matches the harness's kube-apiserver (Kubernetes v1.X.Y ships k8s.io/api v0.X.Y).

const staging = versions.KUBERNETES_VERSION?.replace(/^v1\./, 'v0.') ?? 'v0.36.3';
const modCache =
  process.env.GOMODCACHE ?? join(process.env.GOPATH ?? join(homedir(), 'go'), 'pkg', 'mod');

// int64 fields (timestamps, generations) fit a double; without Long, protobufjs reads them as
// numbers, as JSON.parse does, instead of allocating a Long per field.
(protobuf.util as { Long: unknown }).Long = undefined;
protobuf.configure();

/** An import path of the .proto files (k8s.io/api/..., k8s.io/apimachinery/...) in the cache. */
function inModCache(target: string): string {
  const m = /^k8s\.io\/(api|apimachinery)\/(.*)$/.exec(target);
  return m === null ? target : join(modCache, 'k8s.io', `${m[1] ?? ''}@${staging}`, m[2] ?? '');
}

function loadSchema(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_from, target) => inModCache(target);
  const core = 'k8s.io/api/core/v1/generated.proto';
  if (!existsSync(inModCache(core))) {
    throw new Error(
      `no ${inModCache(core)}: run \`go mod download k8s.io/api@${staging} k8s.io/apimachinery@${staging}\``,
    );
  }
  // Field names as Kubernetes spells them (they are camelCase already; this only skips the
  // conversion).
  root.loadSync(core, { keepCase: true });
  root.resolveAll();
  return root;
}

const schema = loadSchema();
const pb = {
  unknown: schema.lookupType('k8s.io.apimachinery.pkg.runtime.Unknown'),
  watchEvent: schema.lookupType('k8s.io.apimachinery.pkg.apis.meta.v1.WatchEvent'),
  pod: schema.lookupType('k8s.io.api.core.v1.Pod'),
  podList: schema.lookupType('k8s.io.api.core.v1.PodList'),
  endpointsList: schema.lookupType('k8s.io.api.core.v1.EndpointsList'),
  // Any List message, to read a page's `continue`: ListMeta is field 1, the items go unread.
  listMeta: new protobuf.Type('ListMetaOnly').add(
    new protobuf.Field('metadata', 1, 'k8s.io.apimachinery.pkg.apis.meta.v1.ListMeta'),
  ),
};
schema.add(pb.listMeta);
schema.resolveAll();

// Decoded messages as read here. protobufjs puts the defaults of absent fields on the prototype
// ('' , 0, null, a frozen empty array or object), so every field reads as a value; Go's generated
// marshallers write non-pointer fields even when empty, where JSON omits them (omitempty).
interface TimeMsg {
  readonly seconds: number;
}
interface ObjectMetaMsg {
  readonly name: string;
  readonly generateName: string;
  readonly namespace: string;
  readonly selfLink: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly generation: number;
  readonly creationTimestamp: TimeMsg | null;
  readonly deletionTimestamp: TimeMsg | null;
  readonly deletionGracePeriodSeconds: number;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly ownerReferences: readonly OwnerReferenceMsg[];
  readonly finalizers: readonly string[];
}
interface OwnerReferenceMsg {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller: boolean;
  readonly blockOwnerDeletion: boolean;
}
interface ContainerPortMsg {
  readonly name: string;
  readonly hostPort: number;
  readonly containerPort: number;
  readonly protocol: string;
  readonly hostIP: string;
}
interface ContainerMsg {
  readonly name: string;
  readonly ports: readonly ContainerPortMsg[];
  readonly restartPolicy: string;
}
interface PodMsg {
  readonly metadata: ObjectMetaMsg | null;
  readonly spec: {
    readonly nodeName: string;
    readonly hostname: string;
    readonly subdomain: string;
    readonly containers: readonly ContainerMsg[];
    readonly initContainers: readonly ContainerMsg[];
  } | null;
  readonly status: {
    readonly phase: string;
    readonly podIP: string;
    readonly podIPs: readonly { readonly ip: string }[];
    readonly conditions: readonly {
      readonly type: string;
      readonly status: string;
      readonly lastTransitionTime: TimeMsg | null;
    }[];
  } | null;
}
interface ObjectReferenceMsg {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly uid: string;
  readonly apiVersion: string;
  readonly resourceVersion: string;
  readonly fieldPath: string;
}
interface EndpointAddressMsg {
  readonly ip: string;
  readonly hostname: string;
  readonly nodeName: string;
  readonly targetRef: ObjectReferenceMsg | null;
}
interface EndpointsMsg {
  readonly metadata: ObjectMetaMsg | null;
  readonly subsets: readonly {
    readonly addresses: readonly EndpointAddressMsg[];
    readonly notReadyAddresses: readonly EndpointAddressMsg[];
    readonly ports: readonly {
      readonly name: string;
      readonly port: number;
      readonly protocol: string;
      readonly appProtocol: string;
    }[];
  }[];
}

// ---------------------------------------------------------------------------------------------
// From decoded messages to the JSON shape the transforms read. This is the minimal mapping, not
// a general protobuf-to-JSON conversion: for Pods only the fields transformPod reads; for
// Endpoints, which transformEndpoints keeps whole, every field of the types involved.

const emptyObject = protobuf.util.emptyObject;

/** Sets `key` unless JSON would omit it: empty strings and zeros (omitempty), absent messages. */
function put(out: Raw, key: string, v: unknown): void {
  if (v === '' || v === 0 || v === null || v === undefined || v === emptyObject) return;
  if (Array.isArray(v) && v.length === 0) return;
  out[key] = v;
}

/** Pointer fields (`*bool`, `*string`): present when sent, even when false or empty. */
function putOwn(out: Raw, msg: object, key: string): void {
  if (Object.hasOwn(msg, key)) out[key] = (msg as Raw)[key];
}

/** A zero metav1.Time is marshalled as an empty message; JSON has null there. */
function time(t: TimeMsg | null): Date | undefined {
  return t === null || t.seconds === 0 ? undefined : new Date(t.seconds * 1000);
}

function podMetaShape(m: ObjectMetaMsg | null): Raw {
  const out: Raw = {};
  if (m === null) return out;
  put(out, 'name', m.name);
  put(out, 'namespace', m.namespace);
  put(out, 'uid', m.uid);
  put(out, 'resourceVersion', m.resourceVersion);
  put(out, 'labels', m.labels);
  put(out, 'creationTimestamp', time(m.creationTimestamp));
  put(out, 'deletionTimestamp', time(m.deletionTimestamp));
  return out;
}

function containerShape(c: ContainerMsg): Raw {
  const out: Raw = {};
  put(out, 'name', c.name);
  put(
    out,
    'ports',
    c.ports.map((p) => {
      const port: Raw = {};
      put(port, 'name', p.name);
      put(port, 'hostPort', p.hostPort);
      put(port, 'containerPort', p.containerPort);
      put(port, 'protocol', p.protocol);
      put(port, 'hostIP', p.hostIP);
      return port;
    }),
  );
  putOwn(out, c, 'restartPolicy');
  return out;
}

function podShape(p: PodMsg): Raw {
  const spec: Raw = {};
  if (p.spec !== null) {
    put(spec, 'nodeName', p.spec.nodeName);
    put(spec, 'hostname', p.spec.hostname);
    put(spec, 'subdomain', p.spec.subdomain);
    spec.containers = p.spec.containers.map(containerShape);
    put(spec, 'initContainers', p.spec.initContainers.map(containerShape));
  }
  const status: Raw = {};
  if (p.status !== null) {
    put(status, 'phase', p.status.phase);
    put(status, 'podIP', p.status.podIP);
    put(
      status,
      'podIPs',
      p.status.podIPs.map((x) => ({ ip: x.ip })),
    );
    status.conditions = p.status.conditions.map((c) => {
      const out: Raw = {};
      put(out, 'type', c.type);
      put(out, 'status', c.status);
      put(out, 'lastTransitionTime', time(c.lastTransitionTime));
      return out;
    });
  }
  return { metadata: podMetaShape(p.metadata), spec, status };
}

function fullMetaShape(m: ObjectMetaMsg | null): Raw {
  const out: Raw = {};
  if (m === null) return out;
  put(out, 'name', m.name);
  put(out, 'generateName', m.generateName);
  put(out, 'namespace', m.namespace);
  put(out, 'selfLink', m.selfLink);
  put(out, 'uid', m.uid);
  put(out, 'resourceVersion', m.resourceVersion);
  put(out, 'generation', m.generation);
  put(out, 'creationTimestamp', time(m.creationTimestamp));
  put(out, 'deletionTimestamp', time(m.deletionTimestamp));
  putOwn(out, m, 'deletionGracePeriodSeconds');
  put(out, 'labels', m.labels);
  put(out, 'annotations', m.annotations);
  put(
    out,
    'ownerReferences',
    m.ownerReferences.map((o) => {
      const ref: Raw = {};
      put(ref, 'apiVersion', o.apiVersion);
      put(ref, 'kind', o.kind);
      put(ref, 'name', o.name);
      put(ref, 'uid', o.uid);
      putOwn(ref, o, 'controller');
      putOwn(ref, o, 'blockOwnerDeletion');
      return ref;
    }),
  );
  put(out, 'finalizers', m.finalizers);
  // managedFields are left out: transformEndpoints drops them.
  return out;
}

function addressShape(a: EndpointAddressMsg): Raw {
  const out: Raw = {};
  put(out, 'ip', a.ip);
  put(out, 'hostname', a.hostname);
  putOwn(out, a, 'nodeName');
  if (a.targetRef !== null) {
    const t = a.targetRef;
    const ref: Raw = {};
    put(ref, 'kind', t.kind);
    put(ref, 'namespace', t.namespace);
    put(ref, 'name', t.name);
    put(ref, 'uid', t.uid);
    put(ref, 'apiVersion', t.apiVersion);
    put(ref, 'resourceVersion', t.resourceVersion);
    put(ref, 'fieldPath', t.fieldPath);
    out.targetRef = ref;
  }
  return out;
}

function endpointsShape(e: EndpointsMsg): Raw {
  const out: Raw = { metadata: fullMetaShape(e.metadata) };
  put(
    out,
    'subsets',
    e.subsets.map((s) => {
      const subset: Raw = {};
      put(subset, 'addresses', s.addresses.map(addressShape));
      put(subset, 'notReadyAddresses', s.notReadyAddresses.map(addressShape));
      put(
        subset,
        'ports',
        s.ports.map((p) => {
          const port: Raw = { port: p.port };
          put(port, 'name', p.name);
          put(port, 'protocol', p.protocol);
          putOwn(port, p, 'appProtocol');
          return port;
        }),
      );
      return subset;
    }),
  );
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding: what is timed. Bodies are whole (as rest.ts concatenates a response's chunks before
// parsing); the JSON side includes turning the bytes into a string, as rest.ts does.

/** A protobuf body: the magic "k8s\0", then a runtime.Unknown whose `raw` is the object. */
function unwrap(b: Buffer): Buffer {
  if (b[0] !== 0x6b || b[1] !== 0x38 || b[2] !== 0x73 || b[3] !== 0x00)
    throw new Error('not a Kubernetes protobuf body (no k8s\\0 prefix)');
  const u = pb.unknown.decode(b.subarray(4)) as unknown as { raw: Buffer | null };
  if (u.raw === null) throw new Error('runtime.Unknown without raw');
  return u.raw;
}

function jsonItems(bodies: readonly Buffer[]): unknown[] {
  const out: unknown[] = [];
  for (const b of bodies) {
    const list = JSON.parse(b.toString('utf8')) as { items?: unknown[] | null };
    for (const item of list.items ?? []) out.push(item);
  }
  return out;
}

function protoItems(type: protobuf.Type): (bodies: readonly Buffer[]) => unknown[] {
  return (bodies) => {
    const out: unknown[] = [];
    for (const b of bodies) {
      const list = type.decode(unwrap(b)) as unknown as { items: readonly unknown[] };
      for (const item of list.items) out.push(item);
    }
    return out;
  };
}

/** A JSON watch: one {"type","object"} per line. */
function jsonEvents(bodies: readonly Buffer[]): unknown[] {
  const out: unknown[] = [];
  for (const b of bodies) {
    const text = b.toString('utf8');
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const line = text.slice(start, nl);
      start = nl + 1;
      if (line.trim() === '') continue;
      out.push((JSON.parse(line) as { object?: unknown }).object);
    }
  }
  return out;
}

/**
 * A protobuf watch: frames of a 4-byte big-endian length and a metav1.WatchEvent with no envelope,
 * whose object.raw is a whole protobuf body (magic and runtime.Unknown) of the Pod.
 */
function protoEvents(bodies: readonly Buffer[]): unknown[] {
  const out: unknown[] = [];
  for (const b of bodies) {
    for (let at = 0; at + 4 <= b.length;) {
      const n = b.readUInt32BE(at);
      const event = pb.watchEvent.decode(b.subarray(at + 4, at + 4 + n)) as unknown as {
        object: { raw: Buffer | null } | null;
      };
      at += 4 + n;
      const raw = event.object?.raw;
      if (raw === null || raw === undefined) throw new Error('watch event without object');
      out.push(pb.pod.decode(unwrap(raw)));
    }
  }
  return out;
}

const formats = {
  json: 'application/json',
  protobuf: 'application/vnd.kubernetes.protobuf',
} as const;
type Format = keyof typeof formats;
const formatNames = Object.keys(formats) as Format[];

interface Codec {
  readonly decode: (bodies: readonly Buffer[]) => unknown[];
  readonly toCache: (items: readonly unknown[]) => unknown[];
}

const podCodecs: Record<Format, Codec> = {
  json: { decode: jsonItems, toCache: (items) => items.map(transformPod) },
  protobuf: {
    decode: protoItems(pb.podList),
    toCache: (items) => items.map((p) => transformPod(podShape(p as PodMsg))),
  },
};
const endpointsCodecs: Record<Format, Codec> = {
  json: { decode: jsonItems, toCache: (items) => items.map(transformEndpoints) },
  protobuf: {
    decode: protoItems(pb.endpointsList),
    toCache: (items) => items.map((e) => transformEndpoints(endpointsShape(e as EndpointsMsg))),
  },
};
const watchCodecs: Record<Format, Codec> = {
  json: { decode: jsonEvents, toCache: podCodecs.json.toCache },
  protobuf: { decode: protoEvents, toCache: podCodecs.protobuf.toCache },
};

// ---------------------------------------------------------------------------------------------
// Fetching: node:https with the TLS material and headers client-node derives from the
// kubeconfig, as src/runtime/rest.ts takes them, but keeping the bytes as they arrive.

interface Connection {
  readonly base: URL;
  readonly agent: https.Agent;
  readonly headers: Readonly<Record<string, string>>;
}

async function connect(kc: KubeConfig): Promise<Connection> {
  const cluster = kc.getCurrentCluster();
  if (cluster === null) throw new Error('kubeconfig has no current cluster');
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {}))
    if (typeof v === 'string') headers[k] = v;
  return {
    base: new URL(cluster.server),
    agent: new https.Agent({
      keepAlive: true,
      ...(opts.ca !== undefined ? { ca: opts.ca } : {}),
      ...(opts.cert !== undefined ? { cert: opts.cert } : {}),
      ...(opts.key !== undefined ? { key: opts.key } : {}),
    }),
    headers,
  };
}

interface Response {
  readonly body: Buffer;
  readonly contentType: string;
  readonly contentEncoding: string;
  readonly wallMs: number;
  /** This process's CPU while the request ran: TLS, socket reads, buffering. */
  readonly cpuMs: number;
}

function get(
  c: Connection,
  path: string,
  query: Readonly<Record<string, string>>,
  format: Format,
  gzip = false,
): Promise<Response> {
  const url = new URL(path, c.base);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = https.request(
      url,
      {
        agent: c.agent,
        headers: {
          ...c.headers,
          Accept: formats[format],
          ...(gzip ? { 'Accept-Encoding': 'gzip' } : {}),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (b: Buffer) => chunks.push(b));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          const cpu = process.cpuUsage(cpu0);
          if (res.statusCode !== 200) {
            reject(
              new Error(
                `GET ${url.pathname} (${format}): ${String(res.statusCode)} ${body.toString('utf8', 0, 500)}`,
              ),
            );
            return;
          }
          resolve({
            body,
            contentType: res.headers['content-type'] ?? '',
            contentEncoding: res.headers['content-encoding'] ?? '',
            wallMs: performance.now() - t0,
            cpuMs: (cpu.user + cpu.system) / 1000,
          });
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

interface ListFetch {
  readonly bodies: Buffer[];
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly contentType: string;
}

/** The `continue` token of a list body, read outside the timed decoding. */
function continueOf(format: Format, body: Buffer): string {
  if (format === 'json')
    return (
      (JSON.parse(body.toString('utf8')) as { metadata?: { continue?: string } }).metadata
        ?.continue ?? ''
    );
  const list = pb.listMeta.decode(unwrap(body)) as unknown as {
    metadata: { continue: string } | null;
  };
  return list.metadata?.continue ?? '';
}

async function list(
  c: Connection,
  path: string,
  format: Format,
  limit: number | undefined,
): Promise<ListFetch> {
  const bodies: Buffer[] = [];
  let wallMs = 0;
  let cpuMs = 0;
  let contentType: string;
  let token = '';
  do {
    const query: Record<string, string> = {};
    if (limit !== undefined) query.limit = String(limit);
    if (token !== '') query.continue = token;
    const r = await get(c, path, query, format);
    bodies.push(r.body);
    wallMs += r.wallMs;
    cpuMs += r.cpuMs;
    contentType = r.contentType;
    token = limit === undefined ? '' : continueOf(format, r.body);
  } while (token !== '');
  return { bodies, wallMs, cpuMs, contentType };
}

interface Capture {
  readonly bodies: () => Buffer[];
  readonly events: () => number;
  readonly contentType: Promise<string>;
  close(): void;
}

/** A watch whose bytes are kept as they arrive; events are only counted here. */
function capture(c: Connection, path: string, resourceVersion: string, format: Format): Capture {
  const url = new URL(path, c.base);
  url.searchParams.set('watch', 'true');
  url.searchParams.set('resourceVersion', resourceVersion);
  const chunks: Buffer[] = [];
  let events = 0;
  let pending: Buffer = Buffer.alloc(0);
  let req: ReturnType<typeof https.request> | undefined;
  const contentType = new Promise<string>((resolve, reject) => {
    req = https.request(
      url,
      { agent: c.agent, headers: { ...c.headers, Accept: formats[format] } },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`watch ${url.pathname} (${format}): ${String(res.statusCode)}`));
          res.resume();
          return;
        }
        resolve(res.headers['content-type'] ?? '');
        res.on('data', (b: Buffer) => {
          chunks.push(b);
          if (format === 'json') {
            for (let i = b.indexOf(0x0a); i !== -1; i = b.indexOf(0x0a, i + 1)) events++;
            return;
          }
          pending = pending.length === 0 ? b : Buffer.concat([pending, b]);
          while (pending.length >= 4 && pending.length >= 4 + pending.readUInt32BE(0)) {
            pending = pending.subarray(4 + pending.readUInt32BE(0));
            events++;
          }
        });
        // Closing the watch destroys the response; that is the only error expected here.
        res.on('error', () => undefined);
      },
    );
    req.on('error', reject);
    req.end();
  });
  return {
    bodies: () => [Buffer.concat(chunks)],
    events: () => events,
    contentType,
    close: () => req?.destroy(),
  };
}

// ---------------------------------------------------------------------------------------------
// Measuring.

interface Sample {
  readonly ms: number;
  readonly cpuMs: number;
  /** Bytes allocated on the V8 heap during the call: its growth plus what GCs freed meanwhile. */
  readonly allocatedMiB: number;
  /** What the result holds once everything else is collected. */
  readonly retainedMiB: number;
}

const MiB = 1048576;
const usedHeap = (): number => v8.getHeapStatistics().used_heap_size;

function sample(fn: () => unknown[]): Sample {
  gc();
  const before = usedHeap();
  const profiler = new v8.GCProfiler();
  profiler.start();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const result = fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const gcs = profiler.stop();
  const after = usedHeap();
  let freed = 0;
  for (const s of gcs.statistics)
    freed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
  gc();
  const retained = usedHeap() - before;
  // Read after the collection, so that the result is still reachable during it.
  if (result.length < 0) throw new Error('unreachable');
  return {
    ms,
    cpuMs: (cpu.user + cpu.system) / 1000,
    allocatedMiB: (after - before + freed) / MiB,
    retainedMiB: retained / MiB,
  };
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] ?? 0) : ((s[mid - 1] ?? 0) + (s[mid] ?? 0)) / 2;
}

function medianSample(samples: readonly Sample[]): Sample {
  return {
    ms: median(samples.map((s) => s.ms)),
    cpuMs: median(samples.map((s) => s.cpuMs)),
    allocatedMiB: median(samples.map((s) => s.allocatedMiB)),
    retainedMiB: median(samples.map((s) => s.retainedMiB)),
  };
}

interface Fetched {
  readonly bodies: Buffer[];
  readonly requests: number;
  readonly bytes: number;
  /** The same response with Accept-Encoding: gzip (client-go asks for it; Node does not). */
  readonly gzipBytes: number | undefined;
  readonly contentType: string;
  readonly fetchWallMs: number;
  readonly fetchCpuMs: number;
}

interface Case {
  readonly name: string;
  readonly objects: number;
  readonly codecs: Record<Format, Codec>;
  readonly fetched: Record<Format, Fetched>;
}

interface FormatFigures {
  readonly requests: number;
  readonly bytes: number;
  readonly gzipBytes: number | undefined;
  readonly contentType: string;
  readonly fetchWallMs: number;
  readonly fetchCpuMs: number;
  readonly decode: Sample;
  readonly decodeTransform: Sample;
  /** CPU of decode + transform for 10 000 of the case's objects. */
  readonly cpuMsPer10k: number;
  readonly samples: { readonly decode: Sample[]; readonly decodeTransform: Sample[] };
}

export interface CaseFigures {
  readonly name: string;
  readonly objects: number;
  /** transform(JSON) and transform(protobuf) gave deep-equal caches. */
  readonly sameCache: boolean;
  readonly json: FormatFigures;
  readonly protobuf: FormatFigures;
}

export interface ProtobufResult {
  readonly date: string;
  readonly commit: string;
  readonly machine: string;
  readonly cpu: { readonly model: string; readonly count: number };
  readonly node: string;
  readonly kubernetes: string;
  readonly protobufjs: string;
  readonly pods: number;
  readonly services: number;
  readonly reps: number;
  readonly pageSize: number;
  readonly loadMs: number;
  /** The whole run's CPU: etcd and kube-apiserver (load included), and this process. */
  readonly cpuSeconds: { readonly controlPlane: number; readonly benchmark: number };
  readonly cases: readonly CaseFigures[];
  readonly flip: FlipShare | undefined;
}

interface FlipShare {
  readonly source: string;
  /** outrigger's CPU per readiness flip in that benchmark (all its work, idle included). */
  readonly outriggerCpuMsPerFlip: { readonly min: number; readonly max: number };
  /** Decoding and transforming what one flip brings: a pod event, an Endpoints event and reply. */
  readonly jsonMsPerFlip: number;
  readonly protobufMsPerFlip: number;
}

function checkSame(c: Case): boolean {
  const a = c.codecs.json.toCache(c.codecs.json.decode(c.fetched.json.bodies));
  const b = c.codecs.protobuf.toCache(c.codecs.protobuf.decode(c.fetched.protobuf.bodies));
  if (a.length !== b.length) {
    log(`${c.name}: ${String(a.length)} objects from JSON, ${String(b.length)} from protobuf`);
    return false;
  }
  for (let i = 0; i < a.length; i++) {
    if (!isDeepStrictEqual(a[i], b[i])) {
      log(
        `${c.name}: object ${String(i)} differs:\n  json     ${JSON.stringify(a[i])}\n  protobuf ${JSON.stringify(b[i])}`,
      );
      return false;
    }
  }
  return true;
}

function measure(cases: readonly Case[]): CaseFigures[] {
  const samples = new Map<string, { decode: Sample[]; decodeTransform: Sample[] }>();
  const key = (c: Case, f: Format): string => `${c.name}/${f}`;
  // One unmeasured run of each first: protobufjs generates its decoders on first use, and V8
  // optimises both paths after a few thousand objects; outrigger is a long-running process.
  const same = new Map(cases.map((c) => [c.name, checkSame(c)]));
  for (const c of cases)
    for (const f of formatNames) samples.set(key(c, f), { decode: [], decodeTransform: [] });
  for (let rep = 0; rep < reps; rep++) {
    log(`decoding, rep ${String(rep + 1)}/${String(reps)}`);
    for (const c of cases) {
      // Alternate which format goes first, so that neither always follows the other's garbage.
      const order = rep % 2 === 0 ? formatNames : [...formatNames].reverse();
      for (const f of order) {
        const codec = c.codecs[f];
        const bodies = c.fetched[f].bodies;
        const s = samples.get(key(c, f));
        s?.decode.push(sample(() => codec.decode(bodies)));
        s?.decodeTransform.push(sample(() => codec.toCache(codec.decode(bodies))));
      }
    }
  }
  return cases.map((c) => {
    const figures = (f: Format): FormatFigures => {
      const s = samples.get(key(c, f)) ?? { decode: [], decodeTransform: [] };
      const dt = medianSample(s.decodeTransform);
      const { requests, bytes, gzipBytes, contentType, fetchWallMs, fetchCpuMs } = c.fetched[f];
      return {
        requests,
        bytes,
        gzipBytes,
        contentType,
        fetchWallMs,
        fetchCpuMs,
        decode: medianSample(s.decode),
        decodeTransform: dt,
        cpuMsPer10k: (dt.cpuMs * 10_000) / Math.max(1, c.objects),
        samples: s,
      };
    };
    return {
      name: c.name,
      objects: c.objects,
      sameCache: same.get(c.name) ?? false,
      json: figures('json'),
      protobuf: figures('protobuf'),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// Reporting.

function fmtBytes(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${(n / 1e3).toFixed(1)} kB`;
}
const fmtMs = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1));
const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}×` : '–');

function table(cases: readonly CaseFigures[]): string {
  const rows = [
    '| case | format | bytes (gzip) | decode ms | decode + transform ms | CPU ms per 10k objects | allocated MiB | cached MiB | protobuf / JSON |',
    '| --- | --- | --: | --: | --: | --: | --: | --: | --- |',
  ];
  for (const c of cases) {
    for (const f of formatNames) {
      const x = c[f];
      const j = c.json;
      const vs =
        f === 'json'
          ? ''
          : `bytes ${ratio(x.bytes, j.bytes)}, decode ${ratio(x.decode.ms, j.decode.ms)}, ` +
            `decode + transform ${ratio(x.decodeTransform.ms, j.decodeTransform.ms)}`;
      rows.push(
        `| ${c.name} | ${f} | ${fmtBytes(x.bytes)} (${x.gzipBytes === undefined ? '–' : fmtBytes(x.gzipBytes)}) | ` +
          `${fmtMs(x.decode.ms)} | ${fmtMs(x.decodeTransform.ms)} | ${fmtMs(x.cpuMsPer10k)} | ` +
          `${x.decodeTransform.allocatedMiB.toFixed(0)} | ${x.decodeTransform.retainedMiB.toFixed(1)} | ${vs} |`,
      );
    }
  }
  return rows.join('\n');
}

function fetchTable(cases: readonly CaseFigures[]): string {
  const rows = [
    '| case | format | requests | Content-Type | fetch ms (wall) | receiving CPU ms (this process) |',
    '| --- | --- | --: | --- | --: | --: |',
  ];
  for (const c of cases)
    for (const f of formatNames) {
      const x = c[f];
      const fetched = x.fetchWallMs > 0;
      rows.push(
        `| ${c.name} | ${f} | ${String(x.requests)} | ${x.contentType} | ` +
          `${fetched ? fmtMs(x.fetchWallMs) : '–'} | ${fetched ? fmtMs(x.fetchCpuMs) : '–'} |`,
      );
    }
  return rows.join('\n');
}

/** outrigger's CPU per flip from the committed benchmark of the same size, when there is one. */
function flipShare(cases: readonly CaseFigures[]): FlipShare | undefined {
  const source = fileURLToPath(
    new URL(`../../docs/results/bench-${String(podsWanted)}.json`, import.meta.url),
  );
  if (!existsSync(source)) return undefined;
  // The few fields of bench.ts's BenchResult read here.
  const bench = JSON.parse(readFileSync(source, 'utf8')) as {
    date: string;
    outrigger?: { churn: readonly { cpuPer1000: number }[] };
  };
  const perFlip = (bench.outrigger?.churn ?? []).map((l) => l.cpuPer1000);
  const watch = cases.find((c) => c.name === 'pod watch events');
  const endpoints = cases.find((c) => c.name === 'Endpoints list');
  if (perFlip.length === 0 || watch === undefined || endpoints === undefined) return undefined;
  // A flip brings outrigger one pod event, then the Endpoints it writes twice: the reply to its
  // write and the event of its own Endpoints watch (objects of the average size here).
  const per = (f: Format): number =>
    watch[f].decodeTransform.cpuMs / watch.objects +
    (2 * endpoints[f].decodeTransform.cpuMs) / endpoints.objects;
  return {
    source: `docs/results/bench-${String(podsWanted)}.json (${bench.date.slice(0, 10)})`,
    outriggerCpuMsPerFlip: { min: Math.min(...perFlip), max: Math.max(...perFlip) },
    jsonMsPerFlip: per('json'),
    protobufMsPerFlip: per('protobuf'),
  };
}

// ---------------------------------------------------------------------------------------------
// The run.

function flipTargets(w: Workload, n: number): { s: number; k: number }[] {
  const out: { s: number; k: number }[] = [];
  for (let k = 0; out.length < n && k < 1000; k++)
    for (let s = 0; s < w.services.length && out.length < n; s++)
      if (k < (w.services[s]?.size ?? 0)) out.push({ s, k });
  return out;
}

function post(c: Connection, path: string, body: unknown): Promise<void> {
  const text = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      new URL(path, c.base),
      {
        method: 'POST',
        agent: c.agent,
        headers: {
          ...c.headers,
          'Content-Type': 'application/json',
          'Content-Length': Buffer.byteLength(text),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('error', reject);
        res.on('end', () => {
          if (res.statusCode === 201) resolve();
          else
            reject(
              new Error(
                `POST ${path}: ${String(res.statusCode)} ${Buffer.concat(chunks).toString('utf8', 0, 500)}`,
              ),
            );
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** Endpoints as the upstream controller writes them: every ready pod, with its node and ref. */
async function createEndpoints(
  c: Connection,
  w: Workload,
  uids: ReadonlyMap<string, string>,
): Promise<void> {
  const pool = new PQueue({ concurrency: 16 });
  const at = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  await Promise.all(
    w.services.map((s) =>
      pool.add(() =>
        post(c, `/api/v1/namespaces/${s.namespace}/endpoints`, {
          metadata: {
            name: s.name,
            labels: { 'app.kubernetes.io/part-of': 'bench' },
            annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': at },
          },
          subsets: [
            {
              addresses: Array.from({ length: s.size }, (_, k) => ({
                ip: podIP(s.firstPod + k),
                nodeName: `node-${String(k % 100)}`,
                targetRef: {
                  kind: 'Pod',
                  namespace: s.namespace,
                  name: podName(s, k),
                  uid: uids.get(`${s.namespace}/${podName(s, k)}`) ?? '',
                },
              })),
              ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
            },
          ],
        }),
      ),
    ),
  );
}

/** CPU seconds processes have used so far (utime + stime from /proc, in ticks of 10 ms). */
function cpuSecondsOf(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Already gone: nothing to add.
    }
  }
  return ticks / 100;
}

async function fetchList(
  c: Connection,
  path: string,
  limit: number | undefined,
): Promise<Record<Format, Fetched>> {
  const out: Partial<Record<Format, Fetched>> = {};
  for (const f of formatNames) {
    const runs: ListFetch[] = [];
    for (let i = 0; i < fetchReps; i++) runs.push(await list(c, path, f, limit));
    const last = runs.at(-1);
    if (last === undefined) throw new Error('no fetch');
    const gzip = limit === undefined ? await get(c, path, {}, f, true) : undefined;
    // The API server compresses only responses over 128 KiB.
    if (gzip !== undefined && gzip.contentEncoding !== 'gzip' && gzip.body.length > 131072)
      log(
        `${path} (${f}): the API server did not compress (${gzip.contentEncoding || 'identity'})`,
      );
    out[f] = {
      bodies: last.bodies,
      requests: last.bodies.length,
      bytes: last.bodies.reduce((a, b) => a + b.length, 0),
      gzipBytes: gzip?.body.length,
      contentType: last.contentType,
      fetchWallMs: median(runs.map((r) => r.wallMs)),
      fetchCpuMs: median(runs.map((r) => r.cpuMs)),
    };
  }
  const { json, protobuf: proto } = out;
  if (json === undefined || proto === undefined) throw new Error('a format was not fetched');
  if (!proto.contentType.startsWith(formats.protobuf))
    throw new Error(`asked for protobuf, got ${proto.contentType}`);
  return { json, protobuf: proto };
}

async function collect(cluster: Cluster): Promise<{ loadMs: number; cases: Case[] }> {
  const kc = cluster.kubeConfig();
  const w = workload(podsWanted, servicesWanted);
  log(`loading ${String(w.pods)} pods in ${String(w.services.length)} Services`);
  const loadMs = await load(kc, w);
  const conn = await connect(kc);
  try {
    log('listing pods');
    const podsAll = await fetchList(conn, '/api/v1/pods', undefined);
    const podsPaged = await fetchList(conn, '/api/v1/pods', pageSize);
    const parsed = JSON.parse(podsAll.json.bodies[0]?.toString('utf8') ?? '{}') as {
      metadata?: { resourceVersion?: string };
      items?: { metadata?: { namespace?: string; name?: string; uid?: string } }[];
    };
    const uids = new Map<string, string>();
    for (const p of parsed.items ?? [])
      uids.set(`${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`, p.metadata?.uid ?? '');
    const objects = parsed.items?.length ?? 0;

    log(`creating ${String(w.services.length)} Endpoints`);
    await createEndpoints(conn, w, uids);
    const endpoints = await fetchList(conn, '/api/v1/endpoints', undefined);

    const flips = flipTargets(w, flipsWanted);
    log(`watching pods in both formats through ${String(flips.length)} readiness flips`);
    const rv = parsed.metadata?.resourceVersion ?? '';
    const watches = {
      json: capture(conn, '/api/v1/pods', rv, 'json'),
      protobuf: capture(conn, '/api/v1/pods', rv, 'protobuf'),
    };
    const watchTypes = {
      json: await watches.json.contentType,
      protobuf: await watches.protobuf.contentType,
    };
    const core = kc.makeApiClient(CoreV1Api);
    const pool = new PQueue({ concurrency: 16 });
    await Promise.all(
      flips.map(({ s, k }) =>
        pool.add(async () => {
          const svc = w.services[s];
          if (svc === undefined) return;
          await setPodReady(core, svc.namespace, podName(svc, k), podIP(svc.firstPod + k), false);
        }),
      ),
    );
    const deadline = Date.now() + 60_000;
    while (watches.json.events() < flips.length || watches.protobuf.events() < flips.length) {
      if (Date.now() > deadline)
        throw new Error(
          `watch events: ${String(watches.json.events())} JSON, ${String(watches.protobuf.events())} protobuf, of ${String(flips.length)}`,
        );
      await delay(50);
    }
    watches.json.close();
    watches.protobuf.close();
    const watched = (f: Format): Fetched => {
      const bodies = watches[f].bodies();
      return {
        bodies,
        requests: 1,
        bytes: bodies.reduce((a, b) => a + b.length, 0),
        gzipBytes: undefined,
        contentType: watchTypes[f],
        fetchWallMs: 0,
        fetchCpuMs: 0,
      };
    };

    return {
      loadMs,
      cases: [
        { name: 'Pod list', objects, codecs: podCodecs, fetched: podsAll },
        {
          name: `Pod list, pages of ${String(pageSize)}`,
          objects,
          codecs: podCodecs,
          fetched: podsPaged,
        },
        {
          name: 'Endpoints list',
          objects: w.services.length,
          codecs: endpointsCodecs,
          fetched: endpoints,
        },
        {
          name: 'pod watch events',
          objects: flips.length,
          codecs: watchCodecs,
          fetched: { json: watched('json'), protobuf: watched('protobuf') },
        },
      ],
    };
  } finally {
    conn.agent.destroy();
  }
}

const cpu0 = process.cpuUsage();
log(
  `${String(podsWanted)} pods, ${String(servicesWanted)} Services, ${String(reps)} reps; schema from ${modCache} (${staging})`,
);
const cluster = await startCluster();
let collected: { loadMs: number; cases: Case[] };
let controlPlaneCpuS: number;
try {
  collected = await collect(cluster);
} finally {
  controlPlaneCpuS = cpuSecondsOf(cluster.pids());
  // Decoding is measured with the control plane gone, so that it has the cores to itself.
  await cluster.stop();
}
const cases = measure(collected.cases);
const flip = flipShare(cases);
const own = process.cpuUsage(cpu0);
const cpu = cpus();
const result: ProtobufResult = {
  ...origin,
  cpu: { model: cpu[0]?.model.trim() ?? 'unknown', count: cpu.length },
  node: process.version,
  kubernetes: versions.KUBERNETES_VERSION ?? 'unknown',
  protobufjs: (
    JSON.parse(
      readFileSync(fileURLToPath(import.meta.resolve('protobufjs/package.json')), 'utf8'),
    ) as { version: string }
  ).version,
  pods: podsWanted,
  services: servicesWanted,
  reps,
  pageSize,
  loadMs: collected.loadMs,
  cpuSeconds: { controlPlane: controlPlaneCpuS, benchmark: (own.user + own.system) / 1e6 },
  cases,
  flip,
};

const lines = [
  `${String(podsWanted)} pods, ${String(servicesWanted)} Services (Endpoints), ${String(cases.at(-1)?.objects ?? 0)} watch events; median of ${String(reps)}; ${origin.machine}`,
  '',
  table(cases),
  '',
  'decode: JSON.parse of the text (with the Buffer-to-string), or protobufjs messages;',
  "transform: src/runtime/transforms.ts's transformPod / transformEndpoints (for protobuf after a",
  'minimal mapping of the message to the JSON shape they read). cached MiB: heap the result holds.',
  '',
  fetchTable(cases),
  '',
  `fetch: median of ${String(fetchReps)}; its wall time is mostly the API server's encoding.`,
];
for (const c of cases)
  if (!c.sameCache) lines.push(`WARNING: ${c.name}: the two formats did not give the same cache`);
if (flip !== undefined) {
  const { min, max } = flip.outriggerCpuMsPerFlip;
  lines.push(
    '',
    `Per readiness flip (a pod event, an Endpoints reply and event): JSON ${flip.jsonMsPerFlip.toFixed(3)} ms, ` +
      `protobuf ${flip.protobufMsPerFlip.toFixed(3)} ms of CPU; outrigger spends ${min.toFixed(2)}–${max.toFixed(2)} ms ` +
      `per flip in ${flip.source}: decoding is ${((100 * flip.jsonMsPerFlip) / max).toFixed(1)}–${((100 * flip.jsonMsPerFlip) / min).toFixed(1)} % of it.`,
  );
}
lines.push(
  '',
  `CPU: ${controlPlaneCpuS.toFixed(0)} s etcd + kube-apiserver, ${result.cpuSeconds.benchmark.toFixed(0)} s this process`,
);
process.stdout.write(`${lines.join('\n')}\n`);

if (args.out !== undefined) {
  mkdirSync(args.out, { recursive: true });
  const file = join(args.out, 'protobuf.json');
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  log(`wrote ${file}`);
}
