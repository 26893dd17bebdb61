// Builds the ExternalBackend CustomResourceDefinition from the zod schema. Kubernetes accepts only
// structural schemas: no $ref, no additionalProperties:false (a schema for map values is fine), no types inside anyOf; zod's
// int-or-string union becomes x-kubernetes-int-or-string.
import { z } from 'zod';
import {
  externalBackendSpec,
  group,
  kind,
  plural,
  serviceNamePattern,
  version,
} from './externalbackend.ts';
import { externalBackendStatus } from './externalbackendstatus.ts';
import {
  effectivePolicyName,
  maxRulesPerGrant,
  policyKind,
  policyName,
  policyPlural,
  policySpec,
} from './policy.ts';
import {
  proberReportKind,
  proberReportPlural,
  proberReportSpec,
  proberReportStatus,
} from './proberreport.ts';

type Json = Record<string, unknown>;

const kubernetesFormats = new Set([
  'int32',
  'int64',
  'float',
  'double',
  'byte',
  'date',
  'date-time',
  'password',
  'uuid',
  'uri',
  'hostname',
  'ipv4',
  'ipv6',
  'cidr',
]);

function isRecord(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Rewrites zod's JSON Schema into a Kubernetes structural schema, recursively. */
export function structural(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(structural);
  if (!isRecord(node)) return node;
  if (node['x-kubernetes-int-or-string'] === true) {
    // The union's branches carry types, which a structural schema forbids under anyOf.
    const out: Json = { 'x-kubernetes-int-or-string': true };
    for (const [k, v] of Object.entries(node)) {
      if (k !== 'anyOf' && k !== 'oneOf' && k !== 'x-kubernetes-int-or-string')
        out[k] = structural(v);
    }
    return out;
  }
  const out: Json = {};
  const rules = Array.isArray(node['x-kubernetes-validations'])
    ? (node['x-kubernetes-validations'] as { rule?: unknown }[])
    : [];
  for (const [k, v] of Object.entries(node)) {
    if (k === '$schema') continue;
    // A CEL rule that repeats the pattern gives the readable message (see schema.ts `matching`).
    if (k === 'pattern' && rules.some((r) => r.rule === `self.matches(r"${String(v)}")`)) continue;
    // `false` (zod's closed objects) is forbidden; a schema (a map such as matchLabels) must stay,
    // or the API server prunes the map's entries.
    if (k === 'additionalProperties' && !isRecord(v)) continue;
    // zod names formats Kubernetes does not know (e.g. starts_with); the pattern already says it.
    if (k === 'format' && typeof v === 'string' && !kubernetesFormats.has(v)) continue;
    // z.int() adds the safe-integer bounds; they say nothing to a reader of the CRD.
    if (
      (k === 'minimum' && v === Number.MIN_SAFE_INTEGER) ||
      (k === 'maximum' && v === Number.MAX_SAFE_INTEGER)
    )
      continue;
    out[k] = structural(v);
  }
  return out;
}

function openAPI(schema: z.ZodType): Json {
  return structural(
    z.toJSONSchema(schema, { target: 'openapi-3.0', io: 'input', unrepresentable: 'throw' }),
  ) as Json;
}

interface CrdOptions {
  readonly kind: string;
  readonly plural: string;
  readonly shortNames: readonly string[];
  readonly scope: 'Namespaced' | 'Cluster';
  readonly description: string;
  readonly columns: readonly Json[];
  readonly spec: z.ZodType;
  readonly status?: z.ZodType;
  readonly rootRules?: readonly Json[];
}

function crd(o: CrdOptions): Json {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${o.plural}.${group}`,
      annotations: {
        'outrigger.dev/generated-by': 'npm run generate (from the zod schemas in src/)',
      },
    },
    spec: {
      group,
      scope: o.scope,
      names: {
        kind: o.kind,
        listKind: `${o.kind}List`,
        plural: o.plural,
        singular: o.kind.toLowerCase(),
        shortNames: o.shortNames,
        categories: ['outrigger'],
      },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          ...(o.status ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: o.columns,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: o.description,
              required: ['spec'],
              ...(o.rootRules ? { 'x-kubernetes-validations': o.rootRules } : {}),
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: openAPI(o.spec),
                ...(o.status ? { status: openAPI(o.status) } : {}),
              },
            },
          },
        },
      ],
    },
  };
}

export function buildCrd(): Json {
  return crd({
    kind,
    plural,
    shortNames: ['xb'],
    scope: 'Namespaced',
    description:
      'ExternalBackend registers addresses outside the cluster, optionally with pods, as the health-checked endpoints of a Service.',
    columns: [
      { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
      {
        name: 'Addresses',
        type: 'string',
        description: 'ready/total',
        jsonPath: '.status.addressSummary',
      },
      // From status: spec.service.name is optional (it defaults to the object's name).
      { name: 'Service', type: 'string', jsonPath: '.status.service' },
      {
        name: 'Reason',
        type: 'string',
        priority: 1,
        description: 'why Ready is what it is',
        jsonPath: '.status.conditions[?(@.type=="Ready")].reason',
      },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    // The Service defaults to the object's name, which must then be a Service name too.
    rootRules: [
      {
        rule: `has(self.spec.service.name) || (size(self.metadata.name) <= 63 && self.metadata.name.matches('${serviceNamePattern.source}'))`,
        message:
          'metadata.name is not a valid Service name (at most 63 lowercase letters, digits and "-", starting with a letter): set spec.service.name',
      },
    ],
    spec: externalBackendSpec,
    status: externalBackendStatus,
  });
}

export function buildPolicyCrd(): Json {
  return crd({
    kind: policyKind,
    plural: policyPlural,
    shortNames: ['xbp'],
    scope: 'Cluster',
    description: `ExternalBackendPolicy grants namespaces address ranges and ports for ExternalBackend addresses. Grants may be spread over several objects (one per team or GitOps source; the chart's is named "${policyName}"): an address is allowed when any rule of any of them allows it. Deleting one object revokes its grants; with no object at all, or objects that cannot be read, outrigger freezes what is published. "${effectivePolicyName}" is outrigger's own compilation of them all for admission: do not edit it.`,
    columns: [
      { name: 'Rules', type: 'integer', jsonPath: '.spec.rules.length()' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
    rootRules: [
      {
        rule: `self.metadata.name == '${effectivePolicyName}' || !has(self.spec) || !has(self.spec.rules) || size(self.spec.rules) <= ${String(maxRulesPerGrant)}`,
        message: `an ExternalBackendPolicy holds at most ${String(maxRulesPerGrant)} rules: put more in another object (rules add up across objects)`,
      },
      {
        rule: `self.metadata.name == '${effectivePolicyName}' || !has(self.spec) || !has(self.spec.rules) || self.spec.rules.all(r, !r.name.contains('.'))`,
        message: 'a rule name must be a DNS label: lowercase letters, digits and "-"',
      },
    ],
    spec: policySpec,
  });
}

export function buildProberReportCrd(): Json {
  return crd({
    kind: proberReportKind,
    plural: proberReportPlural,
    shortNames: ['xbr'],
    scope: 'Namespaced',
    description:
      "ProberReport is one outrigger replica's view of the ExternalBackends it health-checks, written by that replica alone (the object is named after its pod), read by the leader to decide each address's health by a quorum of probers. outrigger writes these; do not edit them.",
    columns: [
      { name: 'Node', type: 'string', jsonPath: '.spec.nodeName' },
      { name: 'Zone', type: 'string', jsonPath: '.spec.zone' },
      { name: 'Backends', type: 'integer', jsonPath: '.spec.backends.length()' },
      { name: 'Partitioned', type: 'boolean', jsonPath: '.status.partitioned' },
      { name: 'Renewed', type: 'date', jsonPath: '.spec.renewTime' },
    ],
    spec: proberReportSpec,
    status: proberReportStatus,
  });
}
