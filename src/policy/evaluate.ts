// Whether the address policy lets a namespace register an address, as a pure function. The
// admission policy (admission.ts) says the same in CEL; the e2e suite checks that both agree.
import { labelSelectorMatches, type Labels } from '../runtime/labels.ts';
import { CidrIndex } from '../net/cidrindex.ts';
import { parseIP } from '../net/denylist.ts';
import type { ExternalBackendSpec } from '../api/externalbackend.ts';
import { probeKindNames } from '../health/kinds/index.ts';
import {
  effectivePolicyName,
  policyKind,
  policyName,
  policySpec,
  type PolicyRule,
  type PolicySpec,
} from '../api/policy.ts';

/** A rule with its CIDRs parsed once, when the policy is loaded, and the object that holds it. */
interface LoadedRule {
  readonly rule: PolicyRule;
  readonly source: string;
  readonly cidrs: CidrIndex<true>;
}

/** A grant object as cached: its name and its spec, unparsed. */
export interface GrantObject {
  readonly metadata?: { readonly name?: string | undefined } | undefined;
  readonly spec?: unknown;
}

/**
 * The grants as the reconciler found them. `missing` — no grant object at all, one that cannot be
 * parsed, or grants that cannot be read — freezes policy decisions instead of withdrawing: an
 * uninstall, a prune or a lost permission must not empty every tenant's Service. Only an explicit
 * revocation (a rule or an object deleted while others remain) withdraws.
 */
export type LoadedPolicy =
  | { readonly state: 'missing'; readonly message: string }
  | { readonly state: 'ok'; readonly rules: readonly LoadedRule[] };

function loadRules(source: string, spec: PolicySpec): LoadedRule[] {
  return spec.rules.map((rule) => {
    const cidrs = new CidrIndex<true>();
    for (const c of rule.cidrs) {
      try {
        cidrs.add(c, true);
      } catch {
        // Admission refuses malformed CIDRs; one that slipped through covers nothing.
      }
    }
    return { rule, source, cidrs };
  });
}

/**
 * The rules of every grant object, added up (the compiled object outrigger writes for admission is
 * not a grant). `unreadable` says why the objects cannot be read, when they cannot.
 */
export function loadPolicies(objects: readonly GrantObject[], unreadable?: string): LoadedPolicy {
  if (unreadable !== undefined)
    return { state: 'missing', message: `${policyKind}s cannot be read: ${unreadable}` };
  const grants = objects
    .filter((o) => o.metadata?.name !== effectivePolicyName)
    .sort((a, b) => ((a.metadata?.name ?? '') < (b.metadata?.name ?? '') ? -1 : 1));
  if (grants.length === 0) return { state: 'missing', message: `there is no ${policyKind}` };
  const rules: LoadedRule[] = [];
  for (const o of grants) {
    const name = o.metadata?.name ?? '';
    const p = policySpec.safeParse(o.spec ?? {});
    if (!p.success) {
      const issue = p.error.issues[0];
      return {
        state: 'missing',
        message: `${policyKind} ${name} cannot be parsed (${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'})`,
      };
    }
    rules.push(...loadRules(name, p.data));
  }
  return { state: 'ok', rules };
}

/** One grant object on its own (tests, and callers with a single object). */
export function loadPolicy(raw: { spec?: unknown } | undefined): LoadedPolicy {
  return loadPolicies(raw === undefined ? [] : [{ metadata: { name: policyName }, ...raw }]);
}

/**
 * The one object the admission policy reads: every grant object's rules, each named
 * "<object>.<rule>". A ValidatingAdmissionPolicy evaluates each parameter object on its own and
 * requires all to pass, so grants spread over several objects (one per team or GitOps source,
 * which no tool's list semantics can then drop) reach admission compiled into one. Undefined when
 * the grants are missing: the compiled object then keeps what it last said.
 */
export function compileEffective(policy: LoadedPolicy): PolicySpec | undefined {
  if (policy.state !== 'ok') return undefined;
  return {
    rules: policy.rules.map((r) => ({ ...r.rule, name: `${r.source}.${r.rule.name}` })),
  };
}

/**
 * Every port a backend publishes or probes: its ports, and a check's port given by number (of
 * whichever kind: the admission policy counts the same list, src/policy/admission.ts).
 */
export function backendPorts(spec: ExternalBackendSpec): number[] {
  const out = new Set(spec.ports.map((p) => p.port));
  const hc = spec.healthCheck;
  if (hc !== undefined)
    for (const kind of probeKindNames) {
      const p = hc[kind]?.port;
      if (typeof p === 'number') out.add(p);
    }
  return [...out].sort((a, b) => a - b);
}

function allowsPort(rule: PolicyRule, port: number): boolean {
  return (
    rule.ports === undefined ||
    rule.ports.some((r) => port >= r.port && port <= (r.endPort ?? r.port))
  );
}

export interface Subject {
  readonly namespace: string;
  /** The namespace's labels; undefined when not known (yet), which freezes decisions. */
  readonly namespaceLabels: Labels | undefined;
  /** Ports of the backend (backendPorts). */
  readonly ports: readonly number[];
  /**
   * The addresses this backend has published on the ports it publishes now (in its
   * EndpointSlices, see publishedAddresses in controllers/externalbackend/addresses.ts), which a frozen policy keeps:
   * nothing is withdrawn for policy reasons, nothing new is published. A new leader rebuilds the
   * set from the slices, so it needs no memory of its own.
   */
  readonly published?: ReadonlySet<string>;
}

/** Why policy decisions are frozen for this subject, or undefined when they are not. */
export function frozenBecause(policy: LoadedPolicy, subject: Subject): string | undefined {
  if (policy.state === 'missing') return policy.message;
  if (subject.namespaceLabels === undefined)
    return `the labels of namespace ${subject.namespace} are not known`;
  return undefined;
}

const cite = (r: LoadedRule): string => `${r.source}/${r.rule.name}`;

/**
 * A judge for the addresses of one backend: why the policy does not let `subject` register an
 * address, or undefined when a rule of any grant object allows it — a rule that selects the
 * namespace, has a CIDR containing the IP, and allows every port of the backend. What depends
 * only on the backend (which rules select its namespace, which allow its ports) is worked out
 * once, here. While decisions are frozen, exactly the published addresses are allowed.
 */
export function policyJudge(
  policy: LoadedPolicy,
  subject: Subject,
): (ip: string) => string | undefined {
  const { namespace, namespaceLabels, ports } = subject;
  const frozen = frozenBecause(policy, subject);
  if (frozen !== undefined || policy.state !== 'ok' || namespaceLabels === undefined) {
    const published = subject.published ?? new Set<string>();
    return (ip) =>
      published.has(ip)
        ? undefined
        : `not published while the address policy is frozen (${frozen ?? 'unknown'}): addresses already published on these ports stay, new ones wait for the grants`;
  }
  const selecting = policy.rules.filter((r) =>
    labelSelectorMatches(r.rule.namespaceSelector, namespaceLabels),
  );
  if (selecting.length === 0)
    return () => `not allowed: no ${policyKind} rule grants namespace ${namespace} any address`;
  const portsOk = new Map(
    selecting.map((r) => [r, ports.every((p) => allowsPort(r.rule, p))] as const),
  );
  const names = selecting.map(cite).join(', ');
  return (ip) => {
    const addr = parseIP(ip);
    const covering =
      addr === undefined ? [] : selecting.filter((r) => r.cidrs.lookup(addr) !== undefined);
    if (covering.length === 0)
      return `not allowed: no ${policyKind} rule for namespace ${namespace} covers ${ip} (rules: ${names})`;
    if (covering.some((r) => portsOk.get(r) === true)) return undefined;
    const first = covering[0];
    const missing = ports.filter((p) => first !== undefined && !allowsPort(first.rule, p));
    return `not allowed: ${policyKind} rule ${first === undefined ? '' : cite(first)} covers ${ip} but not port ${missing.join(', ')}`;
  };
}

/** What a Node address grant says about one address: the rule that grants it, or why none does. */
export type NodeGrantDecision = { readonly by: string } | { readonly denied: string };

/**
 * A judge of Node addresses for one backend: the rule that lets `subject` register a Node's
 * address — one that selects the namespace, covers the IP with its CIDRs, lists every port of the
 * backend and says allowClusterAddresses: [NodeAddresses] — or why none does. Only the policy's
 * half: the deny list still keeps the API server's ports and every other cluster range out
 * (DenyList.denies with a NodeGrant). A rule without ports grants no Node address, whatever
 * slipped past its schema. While decisions are frozen, a published Node address stays, as any
 * published address does.
 */
export function nodeAddressGrant(
  policy: LoadedPolicy,
  subject: Subject,
): (ip: string) => NodeGrantDecision {
  const { namespace, namespaceLabels, ports } = subject;
  const frozen = frozenBecause(policy, subject);
  if (frozen !== undefined || policy.state !== 'ok' || namespaceLabels === undefined) {
    const published = subject.published ?? new Set<string>();
    return (ip) =>
      published.has(ip)
        ? { by: `a published address kept while the address policy is frozen (${frozen ?? ''})` }
        : { denied: `not published while the address policy is frozen (${frozen ?? 'unknown'})` };
  }
  const granting = policy.rules.filter(
    (r) =>
      r.rule.allowClusterAddresses?.includes('NodeAddresses') === true &&
      r.rule.ports !== undefined &&
      labelSelectorMatches(r.rule.namespaceSelector, namespaceLabels) &&
      ports.every((p) => allowsPort(r.rule, p)),
  );
  return (ip) => {
    const addr = parseIP(ip);
    const rule =
      addr === undefined ? undefined : granting.find((r) => r.cidrs.lookup(addr) !== undefined);
    if (rule !== undefined) return { by: `${policyKind} rule ${cite(rule)}` };
    return {
      denied: `no ${policyKind} rule with allowClusterAddresses: [NodeAddresses] grants namespace ${namespace} ${ip} on port ${ports.join(', ')}`,
    };
  };
}

/** One address at a time (tests, and callers with a single address). */
export function policyDenies(
  policy: LoadedPolicy,
  subject: Subject,
  ip: string,
): string | undefined {
  return policyJudge(policy, subject)(ip);
}
