// The write guard: three ValidatingAdmissionPolicies, bound to outrigger's own ServiceAccount, that
// let it write only the Services, Endpoints and EndpointSlices it manages. RBAC cannot say "only
// objects owned by an ExternalBackend" (it grants a verb on every object of a resource), so a
// compromised operator process, or a bug in its ownership checks, could otherwise rewrite any
// Service's endpoints in the cluster. The rules repeat what the code writes (the label names in
// api/names.ts; controllers/externalbackend/ and endpoints/desired.ts), and nothing more:
//
// - `<name>` (no params) judges the object itself: a backend's objects carry a controller
//   ownerReference to an ExternalBackend (the same one before and after an update), its labels,
//   and the Service shape outrigger creates; selector-mode Endpoints carry outrigger's managed-by
//   label, in the selector-mode namespaces, and never over an object another controller owns.
// - `<name>-owners` (each ExternalBackend of the namespace as a param, evaluated once per param,
//   all must pass) ties an object to the backend named in its ownerReference: the Service,
//   Endpoints and slices must be those of that backend's Service (spec.service.name, default its
//   name), and taking over an Endpoints nobody manages needs the backend's adopt annotation. This
//   is what stops a slice owned by a backend the operator controls from naming a victim Service.
// - `<name>-grants` lets it write only the compiled grant object among ExternalBackendPolicies.
// - `<name>-reports` lets each replica write only its own ProberReport (by its pod's token).
//
// What neither can check (no admission policy can read another object at will) is in SECURITY.md.
import {
  labelAppManagedBy,
  labelEndpointsManagedBy,
  labelServiceName,
  labelSkipMirror,
  labelSliceManagedBy,
  managerName,
} from '../api/names.ts';
import { adoptEndpointsAnnotation, apiVersion, group, kind } from '../api/externalbackend.ts';
import { effectivePolicyName } from '../api/policy.ts';
import { proberReportPlural } from '../api/proberreport.ts';

export interface WriteGuardOptions {
  /** The ServiceAccount the operator runs as. */
  readonly serviceAccount: { readonly namespace: string; readonly name: string };
  /** Namespaces of selector mode: 'all', or a list ([] is `--selector-mode=off`). */
  readonly selectorNamespaces: 'all' | readonly string[];
  /** `--watch-namespaces`: the namespaces of ExternalBackends ([] means all). */
  readonly backendNamespaces: readonly string[];
}

/**
 * CEL of the parts that depend on the installation, for the chart's template to put Helm
 * expressions in their place (src/manager/render.ts).
 */
export interface WriteGuardCel {
  readonly isOperator: string;
  /** The request is in the operator's own namespace (where its ProberReports live). */
  readonly ownNamespace: string;
  readonly selectorScope: string;
  readonly backendScope: string;
}

const str = (s: string): string => JSON.stringify(s);

// The same text as Helm's toJson, so that the chart's rendering and this one are equal.
const inNamespaces = (namespaces: readonly string[]): string =>
  `request.namespace in ${JSON.stringify(namespaces)}`;

export function writeGuardCel(o: WriteGuardOptions): WriteGuardCel {
  const user = `system:serviceaccount:${o.serviceAccount.namespace}:${o.serviceAccount.name}`;
  return {
    isOperator: `request.userInfo.username == ${str(user)}`,
    ownNamespace: `request.namespace == ${str(o.serviceAccount.namespace)}`,
    selectorScope:
      o.selectorNamespaces === 'all'
        ? 'true'
        : o.selectorNamespaces.length === 0
          ? 'false'
          : inNamespaces(o.selectorNamespaces),
    backendScope: o.backendNamespaces.length === 0 ? 'true' : inNamespaces(o.backendNamespaces),
  };
}

const label = (o: string, key: string): string => `${o}.metadata.?labels[?${str(key)}].orValue('')`;

/**
 * Whether o's controller ownerReference is an ExternalBackend, at the version the CRD serves: a
 * version the garbage collector cannot map (outrigger.dev/v0) would make an owner it never
 * resolves, so a made-up owner's object would never be collected.
 */
const backendOwned = (o: string): string =>
  `${o} != null && ${o}.metadata.?ownerReferences.orValue([]).exists(r, r.?controller.orValue(false) && r.kind == ${str(kind)} && r.apiVersion == ${str(apiVersion)})`;

/** The uid of o's controller ownerReference if it is an ExternalBackend, else ''. */
const backendOwner = (o: string): string =>
  `${backendOwned(o)} ? ${o}.metadata.ownerReferences.filter(r, r.?controller.orValue(false))[0].uid : ''`;

const controlled = (o: string): string =>
  `${o}.metadata.?ownerReferences.orValue([]).exists(r, r.?controller.orValue(false))`;

const resources = ['services', 'endpoints', 'endpointslices'] as const;

/**
 * The labels a backend's objects must carry (a Service only when created: a later patch of its
 * ports is no reason to refuse it if someone took the label off).
 */
export const backendLabels: Readonly<
  Record<(typeof resources)[number], Readonly<Record<string, string>>>
> = {
  services: { [labelAppManagedBy]: 'outrigger' },
  endpoints: { [labelEndpointsManagedBy]: managerName, [labelSkipMirror]: 'true' },
  endpointslices: { [labelSliceManagedBy]: managerName },
};

/** What follows the Service's name in a slice's name (controllers/externalbackend/slices.ts). */
export const sliceSuffix = '^-outrigger-ipv[46](-[1-9][0-9]{0,5})?$';

const labelsOf = (r: (typeof resources)[number]): string =>
  Object.entries(backendLabels[r])
    .map(([k, v]) => `${label('object', k)} == ${str(v)}`)
    .join(' && ');

const matchConstraints = (operations: readonly string[]) => ({
  resourceRules: [
    { apiGroups: [''], apiVersions: ['v1'], operations, resources: ['services', 'endpoints'] },
    {
      apiGroups: ['discovery.k8s.io'],
      apiVersions: ['*'],
      operations,
      resources: ['endpointslices'],
    },
  ],
});

type Manifest = Record<string, unknown>;

export function writeGuardPolicies(
  name: string,
  options: WriteGuardOptions | WriteGuardCel,
): { policies: Manifest[]; bindings: Manifest[] } {
  const c = 'isOperator' in options ? options : writeGuardCel(options);
  const op = (o: string): string => `request.operation == ${str(o)}`;
  // A Service outrigger writes reaches no further than its backend: no selector (the pods'
  // Endpoints are the endpoints controller's), no node ports or load balancer, and no externalIPs,
  // which would take traffic to those addresses from every node (CVE-2020-8554).
  const svcShape =
    "!has(object.spec.selector) && object.spec.?type.orValue('ClusterIP') == 'ClusterIP' && size(object.spec.?externalIPs.orValue([])) == 0";
  const objectPolicy: Manifest = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: matchConstraints(['CREATE', 'UPDATE', 'DELETE']),
      matchConditions: [{ name: 'outrigger-serviceaccount', expression: c.isOperator }],
      variables: [
        { name: 'resource', expression: 'request.resource.resource' },
        { name: 'backendScope', expression: c.backendScope },
        { name: 'selectorScope', expression: c.selectorScope },
        { name: 'newOwner', expression: backendOwner('object') },
        { name: 'oldOwner', expression: backendOwner('oldObject') },
        // A backend's own object: an ExternalBackend as controller, the same one before and
        // after (a created object has no other owner).
        {
          name: 'ownedWrite',
          expression: [
            `${op('CREATE')} ? variables.newOwner != '' && size(object.metadata.ownerReferences) == 1`,
            // Owners unchanged: an extra reference (to a Node, say) would keep the object alive
            // once its backend is gone.
            `${op('UPDATE')} ? variables.newOwner != '' && variables.newOwner == variables.oldOwner && object.metadata.ownerReferences == oldObject.metadata.ownerReferences`,
            "variables.oldOwner != ''",
          ].join(' : '),
        },
        {
          // The seed migration's take-over of an Endpoints nobody manages: no controller
          // ownerReference, no endpoints controller's label but outrigger's (an orphan of a backend
          // deleted with --cascade=orphan). Whether the backend asked for it (its adopt annotation)
          // only the second policy, which reads the backend, can tell.
          name: 'adoption',
          expression: `variables.resource == 'endpoints' && ${op('UPDATE')} && variables.newOwner != '' && size(object.metadata.ownerReferences) == 1 && !(${controlled('oldObject')}) && ${label('oldObject', labelEndpointsManagedBy)} in ['', ${str(managerName)}]`,
        },
        {
          name: 'backendLabels',
          expression: `object == null || (variables.resource == 'services' ? (${op('UPDATE')} || ${labelsOf('services')}) && ${svcShape} : variables.resource == 'endpoints' ? ${labelsOf('endpoints')} : ${labelsOf('endpointslices')} && ${label('object', labelServiceName)} != '' && object.metadata.name.startsWith(${label('object', labelServiceName)} + '-outrigger-ipv') && object.metadata.name.substring(size(${label('object', labelServiceName)})).matches(${str(sliceSuffix)}))`,
        },
        {
          name: 'backendWrite',
          expression:
            'variables.backendScope && (variables.ownedWrite || variables.adoption) && variables.backendLabels',
        },
        {
          // Selector mode: the Endpoints of a selector Service (which admission cannot read), with
          // outrigger's label, never over an object another controller owns, owners kept as found.
          name: 'selectorWrite',
          expression: `variables.resource == 'endpoints' && variables.selectorScope && (${op('CREATE')} ? ${label('object', labelEndpointsManagedBy)} == ${str(managerName)} && size(object.metadata.?ownerReferences.orValue([])) == 0 : ${op('UPDATE')} ? ${label('object', labelEndpointsManagedBy)} == ${str(managerName)} && !(${controlled('oldObject')}) && object.metadata.?ownerReferences.orValue([]) == oldObject.metadata.?ownerReferences.orValue([]) : !(${controlled('oldObject')}))`,
        },
      ],
      validations: resources.map((r) => ({
        expression: `variables.resource != ${str(r)} || variables.backendWrite${r === 'endpoints' ? ' || variables.selectorWrite' : ''}`,
        reason: 'Forbidden',
        messageExpression: `'outrigger may ' + request.operation.lowerAscii() + ' ${r === 'services' ? 'Services' : r === 'endpoints' ? 'Endpoints' : 'EndpointSlices'} only ' + ${str(ruleText(r))} + ': ' + request.namespace + '/' + request.name + ' is not one'`,
      })),
    },
  };
  const ownerPolicy: Manifest = {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name: `${name}-owners` },
    spec: {
      failurePolicy: 'Fail',
      paramKind: { apiVersion, kind },
      matchConstraints: matchConstraints(['CREATE', 'UPDATE']),
      matchConditions: [
        { name: 'outrigger-serviceaccount', expression: c.isOperator },
        { name: 'backend-owned', expression: backendOwned('object') },
      ],
      variables: [
        {
          name: 'owner',
          expression: 'object.metadata.ownerReferences.filter(r, r.?controller.orValue(false))[0]',
        },
        // This evaluation's param is the owner, by uid or by name: a reference that borrows one
        // of them must carry the other too.
        {
          name: 'mine',
          expression:
            'params.metadata.uid == variables.owner.uid || params.metadata.name == variables.owner.name',
        },
        {
          name: 'service',
          expression: 'params.spec.?service.?name.orValue(params.metadata.name)',
        },
        {
          name: 'target',
          expression: `request.resource.resource == 'endpointslices' ? ${label('object', labelServiceName)} : object.metadata.name`,
        },
      ],
      validations: [
        {
          expression:
            '!variables.mine || (params.metadata.uid == variables.owner.uid && params.metadata.name == variables.owner.name)',
          reason: 'Forbidden',
          messageExpression: `'the ownerReference of ' + request.namespace + '/' + request.name + ' names ${kind} ' + variables.owner.name + ' with uid ' + variables.owner.uid + ', which is not that ${kind}'`,
        },
        {
          expression: '!variables.mine || variables.target == variables.service',
          reason: 'Forbidden',
          messageExpression: `'${kind} ' + params.metadata.name + ' publishes the endpoints of Service ' + variables.service + ', not of ' + variables.target + ': outrigger may write only the objects of that Service for it'`,
        },
        {
          expression: `!variables.mine || request.operation != 'UPDATE' || oldObject.metadata.?ownerReferences.orValue([]).exists(r, r.uid == variables.owner.uid) || params.metadata.?annotations[?${str(adoptEndpointsAnnotation)}].orValue('') == 'true'`,
          reason: 'Forbidden',
          messageExpression: `'${kind} ' + params.metadata.name + ' does not carry ${adoptEndpointsAnnotation}=true: outrigger may not take over ' + request.namespace + '/' + request.name`,
        },
      ],
    },
  };
  // RBAC cannot limit `create` to a name, so the operator's ClusterRole may create any
  // ExternalBackendPolicy: a compromised process could grant itself (and every tenant) any range
  // through a grant object of its own. The only one it writes is the compiled one.
  const grantsPolicy = ownResourcePolicy(`${name}-grants`, 'externalbackendpolicies', c, [
    {
      expression: `request.name == ${str(effectivePolicyName)}`,
      reason: 'Forbidden',
      messageExpression: `'outrigger may write only the ExternalBackendPolicy ${effectivePolicyName} (the grants it compiles), not ' + request.name`,
    },
  ]);
  // Every replica runs as the one ServiceAccount, so RBAC lets each write every ProberReport: a
  // compromised replica could forge the others' votes. A token issued for a pod names that pod
  // (the user's extra authentication.kubernetes.io/pod-name), and a replica's report is named
  // after its pod: one replica may write its own report only. The leader's status of a report
  // (its partition) is a subresource, not matched here.
  const podName = "request.userInfo.?extra[?'authentication.kubernetes.io/pod-name'].orValue([])";
  const nodeName = "request.userInfo.?extra[?'authentication.kubernetes.io/node-name'].orValue([])";
  const reportsPolicy = ownResourcePolicy(
    `${name}-reports`,
    proberReportPlural,
    c,
    [
      {
        expression: c.ownNamespace,
        reason: 'Forbidden',
        messageExpression: `'outrigger writes ProberReports in its own namespace only, not ' + request.namespace`,
      },
      {
        expression: 'size(variables.pod) == 1 && variables.pod[0] == request.name',
        reason: 'Forbidden',
        messageExpression: `size(variables.pod) == 1 ? 'a replica may write only its own ProberReport (' + variables.pod[0] + '), not ' + request.name : 'a ProberReport is written with a token bound to the pod of its replica, whose name it has: this token names no pod'`,
      },
      {
        // Where the token names the Node too, the report may not claim another (its zone).
        expression:
          "request.operation == 'DELETE' || size(variables.node) == 0 || !has(object.spec.nodeName) || object.spec.nodeName == variables.node[0]",
        reason: 'Forbidden',
        messageExpression: `'a ProberReport names the Node its replica runs on (' + variables.node[0] + ')'`,
      },
    ],
    [
      { name: 'pod', expression: podName },
      { name: 'node', expression: nodeName },
    ],
  );
  const binding = (policy: string, paramRef?: Manifest): Manifest => ({
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicyBinding',
    metadata: { name: policy },
    spec: {
      policyName: policy,
      validationActions: ['Deny'],
      ...(paramRef !== undefined ? { paramRef } : {}),
    },
  });
  return {
    policies: [objectPolicy, ownerPolicy, grantsPolicy, reportsPolicy],
    bindings: [
      binding(name),
      // Every ExternalBackend of the request's namespace. None there: nothing to tie the object
      // to, and the first policy has judged it already (a backend created a moment ago may not
      // have reached the API server's param cache yet; refusing would fail its first writes).
      binding(`${name}-owners`, {
        selector: {},
        parameterNotFoundAction: 'Allow',
      }),
      binding(`${name}-grants`),
      binding(`${name}-reports`),
    ],
  };
}

function ruleText(r: (typeof resources)[number]): string {
  const owned = `owned (a controller ownerReference) by an ${kind} in a namespace it watches, carrying its labels`;
  if (r === 'services') return `${owned}, selectorless, of type ClusterIP and without externalIPs`;
  if (r === 'endpoints')
    return `${owned}, or (selector mode, in its namespaces) labelled ${labelEndpointsManagedBy}=${managerName} and not controlled by anything else`;
  return `${owned}, named <service>-outrigger-ipv4|ipv6[-n] after the Service in ${labelServiceName}`;
}

/**
 * A policy on the operator's own writes of one resource of outrigger.dev (create, update,
 * delete; not its subresources).
 */
function ownResourcePolicy(
  name: string,
  resource: string,
  c: WriteGuardCel,
  validations: readonly Manifest[],
  variables?: readonly Manifest[],
): Manifest {
  return {
    apiVersion: 'admissionregistration.k8s.io/v1',
    kind: 'ValidatingAdmissionPolicy',
    metadata: { name },
    spec: {
      failurePolicy: 'Fail',
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: [group],
            apiVersions: ['*'],
            operations: ['CREATE', 'UPDATE', 'DELETE'],
            resources: [resource],
          },
        ],
      },
      matchConditions: [{ name: 'outrigger-serviceaccount', expression: c.isOperator }],
      ...(variables !== undefined ? { variables } : {}),
      validations,
    },
  };
}
