// Whether the address policy lets a namespace register an address, as a pure function. The
// admission policy (admission.ts) says the same in CEL; the e2e suite checks that both agree.
import { isIP } from 'node:net';
import ipaddr from 'ipaddr.js';
import { labelSelectorMatches, type Labels } from '../endpoints/selector.ts';
import type { ExternalBackendSpec } from '../externalbackend/schema.ts';
import { policyKind, policyName, policySpec, type PolicyRule, type PolicySpec } from './schema.ts';

/** The policy as the reconciler found it: absent, unreadable (fail closed), or its rules. */
export type LoadedPolicy =
  | { readonly state: 'absent' }
  | { readonly state: 'invalid'; readonly message: string }
  | { readonly state: 'ok'; readonly spec: PolicySpec };

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
  return { state: 'ok', spec: p.data };
}

/** Every port a backend publishes or probes: its ports, and a health-check port given by number. */
export function backendPorts(spec: ExternalBackendSpec): number[] {
  const out = new Set(spec.ports.map((p) => p.port));
  const hc = spec.healthCheck;
  for (const p of [hc?.tcp?.port, hc?.http?.port]) if (typeof p === 'number') out.add(p);
  return [...out].sort((a, b) => a - b);
}

function covers(rule: PolicyRule, ip: string): boolean {
  if (isIP(ip) === 0) return false;
  const addr = ipaddr.parse(ip);
  return rule.cidrs.some((c) => {
    try {
      const range = ipaddr.parseCIDR(c);
      return range[0].kind() === addr.kind() && addr.match(range);
    } catch {
      return false;
    }
  });
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
  readonly namespaceLabels: Labels | undefined;
  /** Ports of the backend (backendPorts). */
  readonly ports: readonly number[];
}

/**
 * Why the policy does not let `subject` register `ip`, or undefined when a rule allows it: a rule
 * that selects the namespace, has a CIDR containing the IP, and allows every port of the backend.
 */
export function policyDenies(
  policy: LoadedPolicy,
  subject: Subject,
  ip: string,
): string | undefined {
  if (policy.state === 'absent')
    return `not allowed: there is no ${ref}, so no namespace may register addresses (the platform team grants them there)`;
  if (policy.state === 'invalid') return `not allowed: ${ref} is invalid (${policy.message})`;
  const { namespace, namespaceLabels, ports } = subject;
  const selecting = policy.spec.rules.filter((r) =>
    labelSelectorMatches(r.namespaceSelector, namespaceLabels),
  );
  if (selecting.length === 0)
    return `not allowed by ${ref}: no rule grants namespace ${namespace} any address`;
  const covering = selecting.filter((r) => covers(r, ip));
  if (covering.length === 0)
    return `not allowed by ${ref}: no rule for namespace ${namespace} covers ${ip} (rules: ${selecting.map((r) => r.name).join(', ')})`;
  if (covering.some((r) => ports.every((p) => allowsPort(r, p)))) return undefined;
  const first = covering[0];
  const missing = ports.filter((p) => first !== undefined && !allowsPort(first, p));
  return `not allowed by ${ref}: rule ${first?.name ?? ''} covers ${ip} but not port ${missing.join(', ')}`;
}
