import { describe, expect, it } from '@jest/globals';
import type { CachedProbeSource } from '../../runtime/cached.ts';
import { FakeCache } from './fakes.test-helpers.ts';
import { cacheFailureGraceMs, listFailure, notGranted } from './sources.ts';

describe('notGranted', () => {
  it('names the namespace and gives the RoleBinding for the ServiceAccount the API server named', () => {
    const message =
      'secrets is forbidden: User "system:serviceaccount:outrigger-system:outrigger" cannot list resource "secrets" in API group "" in the namespace "payments"';
    expect(
      notGranted(
        'Secret',
        'payments',
        { code: 403, message, since: 0 },
        'outrigger-health-check-reader',
      ),
    ).toBe(
      'outrigger may not read Secrets in namespace payments (403 Forbidden); to let health checks read the labelled ones, run: kubectl create rolebinding outrigger-health-check-reader --namespace=payments --clusterrole=outrigger-health-check-reader --serviceaccount=outrigger-system:outrigger',
    );
  });

  it('reads the ServiceAccount from a Status body quoted as JSON', () => {
    const message = JSON.stringify(
      JSON.stringify({
        message:
          'secrets is forbidden: User "system:serviceaccount:ops:outrigger" cannot list resource "secrets"',
      }),
    );
    expect(notGranted('Secret', 'a', { code: 403, message, since: 0 })).toContain(
      '--serviceaccount=ops:outrigger',
    );
  });

  it('names the ServiceAccount outrigger knows it runs as when the refusal does not (a watch)', () => {
    expect(
      notGranted(
        'Secret',
        'a',
        { code: 403, message: 'Forbidden', since: 0 },
        'r',
        'ops:outrigger',
      ),
    ).toContain('--clusterrole=r --serviceaccount=ops:outrigger');
  });

  it('leaves the ServiceAccount to fill in when the refusal does not name one', () => {
    expect(notGranted('ConfigMap', 'a', { code: 403, message: 'forbidden', since: 0 })).toContain(
      '--serviceaccount=<outrigger-namespace>:<outrigger-serviceaccount>',
    );
  });
});

describe('listFailure', () => {
  it('stands in for the cache at once when refused for good, after the grace period otherwise, by the clock it is given', () => {
    const secrets = new FakeCache<CachedProbeSource>();
    const since = 1_000_000;
    secrets.setFailure('a', { code: 500, message: 'cannot decrypt', since });
    expect(listFailure(secrets, 'a', since + cacheFailureGraceMs - 1)).toBeUndefined();
    expect(listFailure(secrets, 'a', since + cacheFailureGraceMs)?.message).toBe('cannot decrypt');
    secrets.setFailure('a', { code: 403, message: 'forbidden', since });
    expect(listFailure(secrets, 'a', since)?.code).toBe(403);
    expect(listFailure(secrets, 'b', since + cacheFailureGraceMs)).toBeUndefined();
  });
});
