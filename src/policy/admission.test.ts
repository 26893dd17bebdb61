// The admission policy and the reconciler must count the same ports: a probe kind whose port one
// of them misses would let a tenant probe (or publish on) a port no grant allows. Both lists are
// derived from the kinds registry; this checks each kind of the CRD's healthCheck is in both.
import { describe, expect, it } from '@jest/globals';
import { externalBackendSpec } from '../api/externalbackend.ts';
import { probeKindNames } from '../health/kinds/index.ts';
import { admissionPolicy } from './admission.ts';
import { backendPorts } from './evaluate.ts';

/** The check kinds the ExternalBackend schema has under healthCheck, each with a port field. */
function schemaKindsWithPort(): string[] {
  const hc = externalBackendSpec.shape.healthCheck.unwrap();
  return Object.entries(hc.shape)
    .filter(([, field]) => {
      const inner = (field as { unwrap?: () => unknown }).unwrap?.() as
        { shape?: Record<string, unknown> } | undefined;
      return inner?.shape !== undefined && 'port' in inner.shape;
    })
    .map(([name]) => name)
    .sort();
}

function portsVariable(): string {
  const spec = admissionPolicy('x').policy.spec as {
    variables: { name: string; expression: string }[];
  };
  const v = spec.variables.find((x) => x.name === 'ports');
  if (v === undefined) throw new Error('no ports variable');
  return v.expression;
}

describe('the ports the admission policy and the reconciler judge', () => {
  const kinds = schemaKindsWithPort();

  it('finds every kind of the registry in the schema (the test sees what it checks)', () => {
    expect(kinds).toEqual([...probeKindNames].sort());
    expect(kinds.length).toBeGreaterThanOrEqual(4);
  });

  it.each(kinds)('counts a %s check port given by number in both', (kind) => {
    expect(portsVariable()).toContain(
      `type(object.spec.healthCheck.${kind}.port) == int ? [object.spec.healthCheck.${kind}.port]`,
    );
    expect(
      backendPorts(
        externalBackendSpec.parse({
          ports: [{ name: 'pg', port: 5432 }],
          addresses: [{ ip: '192.0.2.10' }],
          healthCheck: { [kind]: { port: 6443 } },
        }),
      ),
    ).toEqual([5432, 6443]);
  });
});
