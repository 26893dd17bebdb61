// Whether the address policy lets a namespace register an address, as a pure function. The
// admission policy (admission.ts) says the same in CEL; the e2e suite checks that both agree.
import { labelSelectorMatches, type Labels } from '../endpoints/selector.ts';
import { CidrIndex } from '../net/cidrindex.ts';
import { parseIP } from '../net/denylist.ts';
import type { ExternalBackendSpec } from '../externalbackend/schema.ts';
import { policyKind, policyName, policySpec, type PolicyRule, type PolicySpec } from './schema.ts';

/** A rule with its CIDRs parsed once, when the policy is loaded. */
interface LoadedRule {
  readonly rule: PolicyRule;
  readonly cidrs: CidrIndex<true>;
}

/** The policy as the reconciler found it: absent, unreadable (fail closed), or its rules. */
export type LoadedPolicy =
  | { readonly state: 'absent' }
  | { readonly state: 'invalid'; readonly message: string }
  | { readonly state: 'ok'; readonly rules: readonly LoadedRule[] };

function loadRules(spec: PolicySpec): LoadedRule[] {
  return spec.rules.map((rule) => {
    const cidrs = new CidrIndex<true>();
    for (const c of rule.cidrs) {
      try {
        cidrs.add(c, true);
      } catch {
        // Admission refuses malformed CIDRs; one that slipped through covers nothing.
      }
    }
    return { rule, cidrs };
  });
}

export function loadPolicy(raw: { spec?: unknown } | undefined): LoadedPolicy {
  if (raw === undefined) return { state: 'absent' };
  const p = policySpec.safeParse(raw.spec ?? {});
  if (!p.success) {
    const issue = p.error.issues[0];
    return {
      state: 'invalid',
      message: `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`,
    };
  }
  return { state: 'ok', rules: loadRules(p.data) };
}

/** Every port a backend publishes or probes: its ports, and a health-check port given by number. */
export function backendPorts(spec: ExternalBackendSpec): number[] {
  const out = new Set(spec.ports.map((p) => p.port));
  const hc = spec.healthCheck;
  for (const p of [hc?.tcp?.port, hc?.http?.port]) if (typeof p === 'number') out.add(p);
  return [...out].sort((a, b) => a - b);
}

function allowsPort(rule: PolicyRule, port: number): boolean {
  return (
    rule.ports === undefined ||
    rule.ports.some((r) => port >= r.port && port <= (r.endPort ?? r.port))
  );
}

const ref = `${policyKind} "${policyName}"`;

export interface Subject {
  readonly namespace: string;
  /** The namespace's labels; undefined when not known (yet), which allows nothing. */
  readonly namespaceLabels: Labels | undefined;
  /** Ports of the backend (backendPorts). */
  readonly ports: readonly number[];
}

/**
 * A judge for the addresses of one backend: why the policy does not let `subject` register an
 * address, or undefined when a rule allows it — a rule that selects the namespace, has a CIDR
 * containing the IP, and allows every port of the backend. What depends only on the backend
 * (which rules select its namespace, which allow its ports) is worked out once, here.
 */
export function policyJudge(
  policy: LoadedPolicy,
  subject: Subject,
): (ip: string) => string | undefined {
  const { namespace, namespaceLabels, ports } = subject;
  if (policy.state === 'absent')
    return () =>
      `not allowed: there is no ${ref}, so no namespace may register addresses (the platform team grants them there)`;
  if (policy.state === 'invalid') return () => `not allowed: ${ref} is invalid (${policy.message})`;
  if (namespaceLabels === undefined)
    return () => `not allowed yet: the labels of namespace ${namespace} are not known`;
  const selecting = policy.rules.filter((r) =>
    labelSelectorMatches(r.rule.namespaceSelector, namespaceLabels),
  );
  if (selecting.length === 0)
    return () => `not allowed by ${ref}: no rule grants namespace ${namespace} any address`;
  const portsOk = new Map(
    selecting.map((r) => [r, ports.every((p) => allowsPort(r.rule, p))] as const),
  );
  const names = selecting.map((r) => r.rule.name).join(', ');
  return (ip) => {
    const addr = parseIP(ip);
    const covering =
      addr === undefined ? [] : selecting.filter((r) => r.cidrs.lookup(addr) !== undefined);
    if (covering.length === 0)
      return `not allowed by ${ref}: no rule for namespace ${namespace} covers ${ip} (rules: ${names})`;
    if (covering.some((r) => portsOk.get(r) === true)) return undefined;
    const first = covering[0];
    const missing = ports.filter((p) => first !== undefined && !allowsPort(first.rule, p));
    return `not allowed by ${ref}: rule ${first?.rule.name ?? ''} covers ${ip} but not port ${missing.join(', ')}`;
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
