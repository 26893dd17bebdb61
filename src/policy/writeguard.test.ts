// The write guard's CEL is evaluated by a real API server in e2e/writeguard.e2e.test.ts; here,
// that its rules name what the code writes (labels, owner, slice names), so that a change of one
// without the other fails at once.
import { describe, expect, it } from '@jest/globals';
import { desiredEndpoints, desiredSlices } from '../controllers/externalbackend/desired.ts';
import { desiredService, serviceName } from '../controllers/externalbackend/service.ts';
import type { AddressView } from '../controllers/externalbackend/addresses.ts';
import { externalBackendSpec } from '../api/externalbackend.ts';
import { backendLabels, sliceSuffix, writeGuardCel, writeGuardPolicies } from './writeguard.ts';

const options = {
  serviceAccount: { namespace: 'outrigger-system', name: 'outrigger' },
  selectorNamespaces: ['team-a', 'team-b'],
  backendNamespaces: [],
} as const;

interface Policy {
  metadata: { name: string };
  spec: {
    matchConditions: { expression: string }[];
    variables: { name: string; expression: string }[];
    validations: { expression: string }[];
    paramKind?: unknown;
  };
}

const { policies, bindings } = writeGuardPolicies('outrigger-write-guard', options);
const [objectPolicy, ownerPolicy] = policies as unknown as [Policy, Policy];
const variable = (p: Policy, name: string): string =>
  p.spec.variables.find((v) => v.name === name)?.expression ?? '';
const text = JSON.stringify(policies);

const xb = { name: 'db', namespace: 'team-a', uid: 'u-1' };
const spec = externalBackendSpec.parse({
  service: { name: 'postgres' },
  ports: [{ name: 'pg', port: 5432 }],
  addresses: [{ ip: '192.0.2.10' }],
});
const views: AddressView[] = Array.from({ length: 250 }, (_, i) => ({
  ip: `192.0.2.${String(i + 1)}`,
  state: 'Healthy',
  ready: true,
  message: '',
}));

describe('the write guard', () => {
  it('applies to the operator ServiceAccount only, in the namespaces it works in', () => {
    expect(writeGuardCel(options)).toEqual({
      isOperator: 'request.userInfo.username == "system:serviceaccount:outrigger-system:outrigger"',
      ownNamespace: 'request.namespace == "outrigger-system"',
      selectorScope: 'request.namespace in ["team-a","team-b"]',
      backendScope: 'true',
    });
    expect(writeGuardCel({ ...options, selectorNamespaces: [] }).selectorScope).toBe('false');
    expect(writeGuardCel({ ...options, selectorNamespaces: 'all' }).selectorScope).toBe('true');
    expect(writeGuardCel({ ...options, backendNamespaces: ['x'] }).backendScope).toBe(
      'request.namespace in ["x"]',
    );
    for (const p of [objectPolicy, ownerPolicy])
      expect(p.spec.matchConditions[0]?.expression).toBe(writeGuardCel(options).isOperator);
  });

  it('asks of a Service, an Endpoints and a slice the labels and owner the code gives them', () => {
    const written = {
      services: [desiredService(xb, spec)],
      endpoints: [desiredEndpoints(xb, spec, views)],
      endpointslices: desiredSlices(xb, spec, views),
    };
    for (const [resource, objects] of Object.entries(written)) {
      const wanted = backendLabels[resource as keyof typeof backendLabels];
      expect(Object.keys(wanted).length).toBeGreaterThan(0);
      for (const o of objects) {
        expect(o.metadata?.ownerReferences).toEqual([
          expect.objectContaining({
            apiVersion: 'outrigger.dev/v1alpha1',
            kind: 'ExternalBackend',
            controller: true,
          }),
        ]);
        expect(o.metadata?.labels).toMatchObject(wanted);
      }
    }
    for (const [k, v] of Object.entries(backendLabels.endpoints))
      expect(variable(objectPolicy, 'backendLabels')).toContain(
        `object.metadata.?labels[?"${k}"].orValue('') == "${v}"`,
      );
    // The Service outrigger creates has the shape the guard asks for.
    expect(desiredService(xb, spec).spec).not.toHaveProperty('selector');
    expect(desiredService(xb, spec).spec).not.toHaveProperty('type');
    expect(desiredService(xb, spec).spec).not.toHaveProperty('externalIPs');
  });

  it('allows every slice name the planner makes, for the Service the backend names', () => {
    const slices = desiredSlices(xb, spec, views, [], 100);
    expect(slices.length).toBe(3);
    expect(variable(objectPolicy, 'backendLabels')).toContain(
      `matches(${JSON.stringify(sliceSuffix)})`,
    );
    const pattern = sliceSuffix;
    for (const s of slices) {
      const service = s.metadata?.labels?.['kubernetes.io/service-name'] ?? '';
      expect(service).toBe(serviceName(xb, spec));
      const name = s.metadata?.name ?? '';
      expect(name.startsWith(`${service}-outrigger-ipv`)).toBe(true);
      expect(new RegExp(pattern).test(name.slice(service.length))).toBe(true);
    }
    expect(new RegExp(pattern).test('-abcde')).toBe(false);
    // The owner policy ties that label to spec.service.name, default the backend's name.
    expect(variable(ownerPolicy, 'service')).toBe(
      'params.spec.?service.?name.orValue(params.metadata.name)',
    );
  });

  it('judges deletes by the object as it was, and reads every ExternalBackend of the namespace', () => {
    expect(variable(objectPolicy, 'ownedWrite')).toContain("variables.oldOwner != ''");
    expect(ownerPolicy.spec.paramKind).toEqual({
      apiVersion: 'outrigger.dev/v1alpha1',
      kind: 'ExternalBackend',
    });
    expect(bindings[1]).toMatchObject({
      spec: { paramRef: { selector: {}, parameterNotFoundAction: 'Allow' } },
    });
    expect(text).not.toContain('undefined');
  });
});
