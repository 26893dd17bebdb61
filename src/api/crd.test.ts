import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { buildCrd, buildPolicyCrd, buildProberReportCrd, structural } from './crd.ts';
import { generatedFiles } from '../manager/render.ts';
import { externalBackendSpec } from './externalbackend.ts';

describe('the ExternalBackend CRD', () => {
  it.each(generatedFiles().map((f) => [f.path.replace(/^.*?(crds|charts)\//, '$1/'), f.content]))(
    '%s is committed exactly as generated (run `npm run generate` after a change)',
    (path, content) => {
      expect(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')).toBe(content);
    },
  );

  it('is structural: no $ref, no additionalProperties: false, no typed anyOf branches', () => {
    const text = JSON.stringify(buildCrd());
    expect(text).not.toContain('"$ref"');
    expect(text).not.toContain('"additionalProperties":false');
    const walk = (n: unknown): void => {
      if (Array.isArray(n)) n.forEach(walk);
      else if (n !== null && typeof n === 'object') {
        const r = n as Record<string, unknown>;
        for (const b of (r.anyOf as unknown[] | undefined) ?? [])
          expect((b as { type?: unknown }).type).toBeUndefined();
        Object.values(r).forEach(walk);
      }
    };
    walk(buildCrd());
  });

  it('keeps the value schema of maps, so the API server does not prune podSelector.matchLabels', () => {
    const text = JSON.stringify(buildCrd());
    expect(text).toContain(
      '"matchLabels":{"maxProperties":64,"type":"object","additionalProperties":{"type":"string","maxLength":63},',
    );
  });

  it('turns int-or-string unions into x-kubernetes-int-or-string', () => {
    expect(
      structural({
        anyOf: [{ type: 'integer' }, { type: 'string' }],
        'x-kubernetes-int-or-string': true,
      }),
    ).toEqual({
      'x-kubernetes-int-or-string': true,
    });
  });
});

describe('the spec schema at run time', () => {
  it('applies the documented defaults', () => {
    const spec = externalBackendSpec.parse({
      ports: [{ name: 'client', port: 2379 }],
      addresses: [{ ip: '192.0.2.10' }],
      healthCheck: { tcp: { port: 'client' } },
    });
    expect(spec.service).toEqual({ create: true, clusterIP: '' });
    expect(spec.ports[0]?.protocol).toBe('TCP');
    expect(spec.healthCheck).toMatchObject({
      intervalSeconds: 10,
      timeoutSeconds: 2,
      healthyThreshold: 2,
      unhealthyThreshold: 3,
      failOpen: true,
    });
  });

  it.each([
    [
      'a port out of range',
      { ports: [{ name: 'p', port: 70000 }], addresses: [{ ip: '192.0.2.1' }] },
    ],
    ['no ports', { ports: [], addresses: [{ ip: '192.0.2.1' }] }],
    [
      'a bad port name',
      { ports: [{ name: 'Not_OK', port: 80 }], addresses: [{ ip: '192.0.2.1' }] },
    ],
    [
      'a threshold out of range',
      {
        ports: [{ name: 'p', port: 80 }],
        addresses: [{ ip: '192.0.2.1' }],
        healthCheck: { tcp: { port: 80 }, healthyThreshold: 0 },
      },
    ],
    [
      'a bad status range',
      {
        ports: [{ name: 'p', port: 80 }],
        addresses: [{ ip: '192.0.2.1' }],
        healthCheck: { http: { port: 80, expectedStatuses: ['2xx'] } },
      },
    ],
  ])('rejects %s', (_n, spec) => {
    expect(externalBackendSpec.safeParse(spec).success).toBe(false);
  });
});

describe('kubectl explain', () => {
  /** Paths of schema nodes under spec and status (and their items) that carry no description. */
  function undescribed(node: unknown, path: string, out: string[]): string[] {
    const n = node as {
      description?: string;
      properties?: Record<string, unknown>;
      items?: unknown;
      additionalProperties?: unknown;
    };
    if (typeof n.description !== 'string' || n.description.trim() === '') out.push(path);
    for (const [k, v] of Object.entries(n.properties ?? {})) undescribed(v, `${path}.${k}`, out);
    // An array's items and a map's values are explained by the field that holds them; their own
    // fields still need descriptions.
    for (const inner of [n.items, n.additionalProperties]) {
      const props = (inner as { properties?: Record<string, unknown> } | undefined)?.properties;
      for (const [k, v] of Object.entries(props ?? {})) undescribed(v, `${path}[].${k}`, out);
    }
    return out;
  }

  it.each([
    ['ExternalBackend', buildCrd()],
    ['ExternalBackendPolicy', buildPolicyCrd()],
    ['ProberReport', buildProberReportCrd()],
  ])('every field of %s has a description', (_kind, crd) => {
    const schema = (
      crd as {
        spec: {
          versions: { schema: { openAPIV3Schema: { properties: Record<string, unknown> } } }[];
        };
      }
    ).spec.versions[0]?.schema.openAPIV3Schema;
    const missing: string[] = [];
    for (const top of ['spec', 'status']) {
      const node = schema?.properties[top];
      if (node !== undefined) undescribed(node, top, missing);
    }
    expect(missing).toEqual([]);
  });
});
