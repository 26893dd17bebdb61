// Which namespaces the shared caches watch as ExternalBackends come and go.
import { describe, expect, it } from '@jest/globals';
import type { EventHandlers } from '../../runtime/store.ts';
import type { CachedExternalBackend } from '../../api/resources.ts';
import { followBackendNamespaces } from './scopes.ts';

function fakeBackends() {
  const items = new Map<string, CachedExternalBackend>();
  const handlers: EventHandlers<CachedExternalBackend>[] = [];
  return {
    list: () => [...items.values()],
    addHandlers: (h: EventHandlers<CachedExternalBackend>) => {
      handlers.push(h);
    },
    put(ns: string, name: string, spec: object) {
      const before = items.get(`${ns}/${name}`);
      const xb = { metadata: { namespace: ns, name }, spec };
      items.set(`${ns}/${name}`, xb);
      for (const h of handlers) {
        if (before === undefined) h.add?.(xb);
        else h.update?.(before, xb);
      }
    },
    drop(ns: string, name: string) {
      const xb = items.get(`${ns}/${name}`);
      items.delete(`${ns}/${name}`);
      if (xb !== undefined) for (const h of handlers) h.delete?.(xb);
    },
  };
}

function recorder() {
  const calls: (readonly string[] | undefined)[] = [];
  return {
    calls,
    setNamespaces: (n: readonly string[] | undefined) => {
      calls.push(n);
    },
    last: () => calls.at(-1),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('followBackendNamespaces', () => {
  it('watches Services where backends are and Pods where they select pods, and forgets emptied namespaces', async () => {
    const backends = fakeBackends();
    const svc = recorder();
    const pods = recorder();
    followBackendNamespaces({
      backends,
      withBackends: [svc],
      withPodSelectors: [pods],
      selectorNamespaces: ['sel'],
      inBackendScope: (ns) => ns !== 'ignored',
    });
    expect(svc.last()).toEqual(['sel']);
    expect(pods.last()).toEqual(['sel']);

    backends.put('team-a', 'db', { addresses: [] });
    backends.put('team-b', 'web', { podSelector: { matchLabels: { app: 'web' } } });
    backends.put('ignored', 'x', { podSelector: {} });
    const before = svc.calls.length;
    await tick();
    // Three events in one turn of the event loop: one recomputation.
    expect(svc.calls.length).toBe(before + 1);
    expect(svc.last()).toEqual(['sel', 'team-a', 'team-b']);
    expect(pods.last()).toEqual(['sel', 'team-b']);

    backends.put('team-a', 'db', { podSelector: {} });
    await tick();
    expect(pods.last()).toEqual(['sel', 'team-a', 'team-b']);

    backends.drop('team-b', 'web');
    await tick();
    expect(svc.last()).toEqual(['sel', 'team-a']);
    expect(pods.last()).toEqual(['sel', 'team-a']);
  });

  it('leaves cluster-wide caches alone in selector mode over every namespace', async () => {
    const backends = fakeBackends();
    const svc = recorder();
    followBackendNamespaces({
      backends,
      withBackends: [svc],
      withPodSelectors: [],
      selectorNamespaces: undefined,
      inBackendScope: () => true,
    });
    backends.put('team-a', 'db', {});
    await tick();
    expect(svc.calls).toEqual([]);
  });

  it('watches Secrets and ConfigMaps only where a health check names one, in every selector mode', async () => {
    const check = (healthCheck: object) => ({
      ports: [{ name: 'https', port: 443 }],
      addresses: [{ ip: '192.0.2.1' }],
      healthCheck,
    });
    const withCa = check({ tls: { port: 443, caBundle: { configMapName: 'ca', key: 'ca.crt' } } });
    for (const selectorNamespaces of [undefined, ['sel']]) {
      const backends = fakeBackends();
      const refs = recorder();
      followBackendNamespaces({
        backends,
        withBackends: [],
        withPodSelectors: [],
        withProbeRefs: [refs],
        selectorNamespaces,
        inBackendScope: (ns) => ns !== 'ignored',
      });
      // Never the whole cluster, and not the selector scope.
      expect(refs.last()).toEqual([]);
      backends.put('plain', 'db', check({ tcp: { port: 443 } }));
      backends.put('team-a', 'db', withCa);
      backends.put('ignored', 'db', withCa);
      await tick();
      expect(refs.last()).toEqual(['team-a']);
      // Dropping the reference (an edit) stops the watch there.
      backends.put('team-a', 'db', check({ tls: { port: 443 } }));
      await tick();
      expect(refs.last()).toEqual([]);
    }
  });
});
