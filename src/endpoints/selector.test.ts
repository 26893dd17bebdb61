import { describe, expect, it } from '@jest/globals';
import { pod, svc } from './fixtures.test-helpers.ts';
import { servicesForPodEvent } from './selector.ts';

const services = [
  svc('web', { selector: { app: 'web' } }),
  svc('canary', { selector: { app: 'web', track: 'canary' } }),
  svc('all', { selector: {} }),
  svc('manual', { selector: null }),
];
const names = (s: Set<string>): string[] => [...s].sort();

describe('servicesForPodEvent', () => {
  it('on add and delete, names every Service selecting the pod', () => {
    expect(names(servicesForPodEvent(services, undefined, pod('a')))).toEqual(['all', 'web']);
    expect(names(servicesForPodEvent(services, pod('a'), undefined))).toEqual(['all', 'web']);
  });

  it('ignores a resync with the same resourceVersion and updates that change nothing relevant', () => {
    expect(servicesForPodEvent(services, pod('a'), pod('a')).size).toBe(0);
    const annotated = {
      ...pod('a', { rv: '2' }),
      metadata: { ...pod('a', { rv: '2' }).metadata, annotations: { x: 'y' } },
    };
    expect(servicesForPodEvent(services, pod('a'), annotated).size).toBe(0);
  });

  it.each([
    ['readiness', pod('a', { ready: false, rv: '2' })],
    ['pod IPs', pod('a', { ips: ['10.0.0.9'], rv: '2' })],
    ['deletion', pod('a', { deleting: true, rv: '2' })],
  ])('a %s change updates the current Services', (_n, updated) => {
    expect(names(servicesForPodEvent(services, pod('a'), updated))).toEqual(['all', 'web']);
  });

  it('a label-only change updates just the Services whose membership changed', () => {
    const canary = pod('a', { labels: { app: 'web', track: 'canary' }, rv: '2' });
    expect(names(servicesForPodEvent(services, pod('a'), canary))).toEqual(['canary']);
    const other = pod('a', { labels: { app: 'db' }, rv: '2' });
    expect(names(servicesForPodEvent(services, pod('a'), other))).toEqual(['web']);
  });

  it('labels and readiness changing together update the Services of both label sets', () => {
    const moved = pod('a', { labels: { app: 'db' }, ready: false, rv: '2' });
    expect(names(servicesForPodEvent(services, pod('a'), moved))).toEqual(['all', 'web']);
  });
});
