// The ExternalBackendPolicy API (outrigger.dev/v1alpha1, cluster-scoped): the platform team's
// grants of address ranges and ports to namespaces, the Gateway API ReferenceGrant idea applied to
// addresses. Grants may be spread over any number of objects (one per team, or per GitOps source),
// whose rules add up: an address is allowed when any rule of any object allows it. A
// ValidatingAdmissionPolicy evaluates each of several parameter objects on its own and requires
// all of them to pass, so outrigger compiles the grants into one object of its own,
// `outrigger-effective`, which the admission policy reads (evaluate.ts, compileEffective).
import { z } from 'zod';
import { matching } from '../runtime/crdfields.ts';
import { labelSelector } from './externalbackend.ts';

export const policyKind = 'ExternalBackendPolicy';
export const policyPlural = 'externalbackendpolicies';
/** The grant object the chart creates (values: addressPolicy). */
export const policyName = 'cluster';
/** The object outrigger compiles every grant into, for the admission policy; not a grant. */
export const effectivePolicyName = 'outrigger-effective';
/** Rules one grant object may hold; the compiled object holds everyone's. */
export const maxRulesPerGrant = 64;
export const maxEffectiveRules = 1024;

/** The classes of cluster addresses a rule may grant (allowClusterAddresses): Nodes' only. */
export const clusterAddressClasses = ['NodeAddresses'] as const;
export type ClusterAddressClass = (typeof clusterAddressClasses)[number];

const cel = (rule: string, message: string) => ({
  'x-kubernetes-validations': [{ rule, message }],
});

const portRange = z
  .object({
    port: z.int().min(1).max(65535).describe('A port, or the first of a range.'),
    /** Inclusive end of a range starting at `port`. */
    endPort: z
      .int()
      .min(1)
      .max(65535)
      .describe('The last port of the range starting at port (inclusive).')
      .optional(),
  })
  .meta(cel('!has(self.endPort) || self.endPort >= self.port', 'endPort must not be below port'));

const rule = z
  .object({
    // A DNS label in a grant (enforced on the object, crd.ts); "<object>.<rule>" in the compiled
    // object, which is unique because a rule's own name has no dot.
    name: matching(
      z.string().min(1).max(317),
      /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
      'must be a DNS label: lowercase letters, digits and "-"',
    ).describe(
      "The rule's name, a DNS label unique in rules (messages cite it as <object>/<rule>).",
    ),
    /** Namespaces this rule grants to; {} selects every namespace. */
    namespaceSelector: labelSelector.describe(
      'The namespaces this rule grants to, by their labels; {} selects every namespace. kubernetes.io/metadata.name names one.',
    ),
    /** Address ranges the selected namespaces may register. */
    cidrs: z
      .array(
        z
          .string()
          .max(43)
          .meta({
            'x-kubernetes-validations': [
              {
                rule: 'isCIDR(self)',
                message: 'must be a CIDR such as 192.0.2.0/24 or 2001:db8::/64',
              },
              {
                rule: '!isCIDR(self) || cidr(self) == cidr(self).masked()',
                message:
                  'must have no bits set past the prefix length (e.g. 192.0.2.0/24, not 192.0.2.7/24)',
              },
            ],
          }),
      )
      .min(1)
      .max(32)
      .describe('Address ranges the selected namespaces may register (e.g. 192.0.2.0/24).'),
    /** Ports the selected namespaces may publish and probe there; absent allows every port. */
    ports: z
      .array(portRange)
      .min(1)
      .max(32)
      .describe('Ports they may publish and check there; absent allows every port.')
      .optional(),
    /**
     * Classes of the cluster's own addresses this rule lifts the deny list for. Only Nodes'
     * addresses can be granted (etcd or another service on hosts that are also Nodes): pod CIDRs,
     * Service ranges, the API server's ports, link-local, metadata and other built-in ranges are
     * denied whatever a rule says. Judged by the reconciler (the deny list is its alone; admission
     * judges the CIDRs, which must still cover the address).
     */
    allowClusterAddresses: z
      .array(z.enum(clusterAddressClasses))
      .min(1)
      .max(clusterAddressClasses.length)
      .describe(
        "Cluster addresses this rule also grants, which are otherwise always denied: NodeAddresses lets the selected namespaces register Nodes' addresses (InternalIP, ExternalIP) inside cidrs on the rule's ports, never on the API server's port. A rule with it must list ports. Pod CIDRs, Service ranges, link-local and metadata addresses cannot be granted.",
      )
      .meta({ 'x-kubernetes-list-type': 'set' })
      .optional(),
  })
  .meta(
    cel(
      '!has(self.allowClusterAddresses) || has(self.ports)',
      'a rule with allowClusterAddresses must list ports: Node addresses are granted port by port',
    ),
  );

export const policySpec = z
  .object({
    rules: z
      .array(rule)
      .max(maxEffectiveRules)
      .describe(
        `Named grants that add up, also across ExternalBackendPolicy objects: an ExternalBackend address is allowed when any rule allows its namespace, address and ports. No rules: this object grants nothing. At most ${String(maxRulesPerGrant)}.`,
      )
      .default([])
      .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] }),
  })
  .describe('Which namespaces may register which address ranges and ports.');

export type PolicySpec = z.output<typeof policySpec>;
export type PolicyRule = PolicySpec['rules'][number];
