// Why an address of a backend may not be published: the deny list first, then the address policy
// (ExternalBackendPolicy), read from the caches at one instant. The result is a set of read-only
// functions the planner asks; each address is judged once per reconcile (a memo of a pure answer).
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { CachedNamespace } from '../../runtime/transforms.ts';
import type { CachedPolicy } from '../../api/resources.ts';
import type { ExternalBackendSpec } from '../../api/externalbackend.ts';
import type { DenyList } from '../../net/denylist.ts';
import {
  backendPorts,
  frozenBecause,
  nodeAddressGrant,
  policyJudge,
} from '../../policy/evaluate.ts';
import type { Cache } from './options.ts';
import { readPolicies } from '../policy/controller.ts';
import { denyListJudge, publishedAddresses, type Judge } from './addresses.ts';
import type { BackendRef } from './owner.ts';

export interface PolicySources {
  readonly policies: Cache<CachedPolicy>;
  readonly namespaces: Cache<CachedNamespace>;
  /** The current deny list; it changes as cluster ranges come and go. */
  readonly denyList: Pick<DenyList, 'denies' | 'nodeAddress'>;
}

export interface Judgement {
  readonly judge: Judge;
  readonly policyFrozen?: string;
  readonly nodeGrants: (ip: string) => string | undefined;
}

/**
 * The grants as cached. Unreadable grants are missing (which freezes decisions), never "no
 * rules": a lost permission during an uninstall must not withdraw every tenant's addresses.
 */
export function judgeBackend(
  s: PolicySources,
  ref: BackendRef,
  spec: ExternalBackendSpec,
  slices: readonly V1EndpointSlice[],
  now: number,
): Judgement {
  const { namespace } = ref;
  const denied = denyListJudge(s.denyList);
  const ns = s.namespaces.hasSynced() ? s.namespaces.get('', namespace) : undefined;
  const subject = {
    namespace,
    namespaceLabels: ns?.metadata.labels ?? (ns === undefined ? undefined : {}),
    ports: backendPorts(spec),
    published: publishedAddresses(slices, ref, spec),
  };
  const policy = readPolicies(s.policies, now);
  const allowed = policyJudge(policy, subject);
  const frozen = frozenBecause(policy, subject);
  const nodeGrant = nodeAddressGrant(policy, subject);
  const granted = new Map<string, string>();
  // A Node's address is denied like the rest of the cluster's space unless a rule grants Node
  // addresses for this namespace, address and every port of the backend; even then the deny
  // list is asked again with the grant, which keeps the API server's ports and every other
  // cluster range out. Admission never sees Node addresses (it judges CIDRs only, and the deny
  // list is the reconciler's alone): such an address passes it whenever a rule's CIDRs cover it.
  const nodeJudge = (ip: string, why: string): string | undefined => {
    const node = s.denyList.nodeAddress(ip);
    if (node === undefined) return why;
    const d = nodeGrant(ip);
    if ('denied' in d) return `${why}: ${d.denied}`;
    const still = s.denyList.denies(ip, { ports: subject.ports });
    if (still !== undefined) return `denied: ${still}`;
    granted.set(ip, `${node}, by ${d.by}`);
    return undefined;
  };
  const memo = new Map<string, string | undefined>();
  const judge: Judge = (ip) => {
    if (memo.has(ip)) return memo.get(ip);
    const deny = denied(ip);
    const why = deny === undefined ? allowed(ip) : nodeJudge(ip, deny);
    memo.set(ip, why);
    return why;
  };
  const nodeGrants = (ip: string): string | undefined => {
    judge(ip);
    return granted.get(ip);
  };
  return { judge, nodeGrants, ...(frozen !== undefined ? { policyFrozen: frozen } : {}) };
}
