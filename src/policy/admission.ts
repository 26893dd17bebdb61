// The ValidatingAdmissionPolicy that enforces the address policy at admission, so that
// `kubectl apply` of an address no rule allows fails at once, naming the policy and the address.
// Its CEL says what evaluate.ts says (a rule that selects the namespace, contains the IP and allows
// every port of the backend); the chart's template is generated from here (npm run generate).
//
// Admission judges CIDRs and ports only. The deny list (built-in ranges, the cluster's own ranges
// discovered by watching) is the reconciler's and the prober's alone, and so is the Node-address
// class a rule may grant (allowClusterAddresses: [NodeAddresses]): an address that is a Node's
// passes admission whenever a rule's CIDRs and ports cover it, and the reconciler then denies it
// unless such a rule grants it. Compiling the Nodes' addresses in here instead would put
// thousands of entries (every Node of a large cluster) into a parameter object already bounded by
// 1024 rules and CEL's per-call cost, and would still lag the Nodes' changes, which the
// reconciler follows by watching.
import { group, plural } from '../api/externalbackend.ts';
import { probeKindNames, type ProbeKindName } from '../health/kinds/index.ts';
import { effectivePolicyName, policyKind } from '../api/policy.ts';

const selects = [
  '(!has(r.namespaceSelector.matchLabels) || r.namespaceSelector.matchLabels.all(k, k in variables.labels && variables.labels[k] == r.namespaceSelector.matchLabels[k]))',
  "(!has(r.namespaceSelector.matchExpressions) || r.namespaceSelector.matchExpressions.all(e, e.operator == 'In' ? (e.key in variables.labels && e.values.exists(v, v == variables.labels[e.key])) : e.operator == 'NotIn' ? !(e.key in variables.labels && e.values.exists(v, v == variables.labels[e.key])) : e.operator == 'Exists' ? e.key in variables.labels : !(e.key in variables.labels)))",
].join(' && ');

const portsAllowed =
  '(!has(r.ports) || variables.ports.all(p, r.ports.exists(x, p >= x.port && p <= (has(x.endPort) ? x.endPort : x.port))))';

/** Every port an object publishes or probes (a probe port given by number). */
const portsOf = (o: 'object' | 'oldObject'): string => {
  const probe = (kind: ProbeKindName): string =>
    `(has(${o}.spec.healthCheck) && has(${o}.spec.healthCheck.${kind}) && type(${o}.spec.healthCheck.${kind}.port) == int ? [${o}.spec.healthCheck.${kind}.port] : [])`;
  return [`${o}.spec.ports.map(p, p.port)`, ...probeKindNames.map(probe)].join(' + ');
};

/** The IPs an object lists, primaries then backups (a CEL expression of list<string>). */
const ipsOf = (o: 'object' | 'oldObject'): string =>
  `(has(${o}.spec.addresses) ? ${o}.spec.addresses.map(a, a.ip) : []) + (has(${o}.spec.backup) && has(${o}.spec.backup.addresses) ? ${o}.spec.backup.addresses.map(a, a.ip) : [])`;

export function admissionPolicy(name: string): {
  policy: Record<string, unknown>;
  binding: Record<string, unknown>;
} {
  return {
    policy: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name },
      spec: {
        failurePolicy: 'Fail',
        paramKind: { apiVersion: `${group}/v1alpha1`, kind: policyKind },
        // An object being deleted is let through: the garbage collector removes its finalizers
        // with updates, whatever the policy says by then.
        matchConditions: [
          { name: 'not-being-deleted', expression: '!has(object.metadata.deletionTimestamp)' },
          // Labels, annotations and finalizers are no business of the address policy.
          {
            name: 'spec-changed',
            expression: 'oldObject == null || object.spec != oldObject.spec',
          },
        ],
        matchConstraints: {
          resourceRules: [
            {
              apiGroups: [group],
              apiVersions: ['*'],
              operations: ['CREATE', 'UPDATE'],
              resources: [plural],
            },
          ],
        },
        variables: [
          {
            name: 'labels',
            expression:
              'has(namespaceObject.metadata.labels) ? namespaceObject.metadata.labels : {}',
          },
          { name: 'ports', expression: portsOf('object') },
          // On an update, only what it adds is judged: addresses it did not have, or all of them
          // when its ports change. What a narrowed policy no longer allows is the reconciler's to
          // withdraw, and an unrelated edit is not refused for it.
          {
            name: 'portsChanged',
            expression: `oldObject == null || variables.ports != ${portsOf('oldObject')}`,
          },
          {
            name: 'rules',
            expression: `has(params.spec.rules) ? params.spec.rules.filter(r, ${selects} && ${portsAllowed}) : []`,
          },
          // Every IP the object registers, primaries and backups (spec.backup.addresses): a
          // backup is published when the primaries fail, so it needs a grant as they do. As
          // strings, because CEL cannot add lists of two differently declared object types.
          { name: 'addresses', expression: ipsOf('object') },
          {
            name: 'oldAddresses',
            expression: `oldObject == null ? [] : ${ipsOf('oldObject')}`,
          },
          {
            name: 'denied',
            // The grant check comes first: it costs rules × CIDRs per address, where the search
            // of the old addresses costs their number; a 5000-address backend that its grant
            // covers never pays 5000 × 5000 (over CEL's per-call cost limit: admission would
            // fail closed).
            // Addresses and ports unchanged (a health-check edit): nothing new to judge.
            expression:
              '(!variables.portsChanged && variables.addresses == variables.oldAddresses) ? [] : variables.addresses.filter(ip, !variables.rules.exists(r, r.cidrs.exists(c, cidr(c).containsIP(ip))) && (variables.portsChanged || !(ip in variables.oldAddresses)))',
          },
        ],
        validations: [
          {
            expression: 'size(variables.denied) == 0',
            reason: 'Forbidden',
            message: `an address is not allowed by any ${policyKind}`,
            messageExpression: `'no ${policyKind} has a rule that lets namespace ' + namespaceObject.metadata.name + ' register ' + variables.denied[0] + (size(variables.denied) > 1 ? ' (and ' + string(size(variables.denied) - 1) + ' more addresses)' : '') + ' on ports ' + variables.ports.map(p, string(p)).join(', ') + ' (ask the platform team for a rule)'`,
          },
        ],
      },
    },
    binding: {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name },
      spec: {
        policyName: name,
        validationActions: ['Deny'],
        // The grants compiled into one object by outrigger (schema.ts says why). Without it,
        // admission lets objects in (Deny would also block the garbage collector's finalizer
        // updates) and the reconciler judges alone.
        paramRef: { name: effectivePolicyName, parameterNotFoundAction: 'Allow' },
      },
    },
  };
}
