import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { buildCrd, structural } from './crd.ts';
import { generatedFiles } from './render.ts';
import { externalBackendSpec } from './schema.ts';

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
      '"matchLabels":{"maxProperties":64,"type":"object","additionalProperties":{"type":"string","maxLength":63}}',
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
