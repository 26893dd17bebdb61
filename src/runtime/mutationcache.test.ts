import { describe, expect, it } from '@jest/globals';
import type { EventHandlers } from './store.ts';
import { MutationCache, type WatchedCache } from './mutationcache.ts';

interface Obj {
  readonly metadata: { namespace: string; name: string; resourceVersion: string };
  readonly data: string;
}

/** A cache the test moves by hand, delivering events as an informer does (after the update). */
class Store implements WatchedCache<Obj> {
  private readonly objects = new Map<string, Obj>();
  private readonly handlers: EventHandlers<Obj>[] = [];
  get(namespace: string, name: string): Obj | undefined {
    return this.objects.get(`${namespace}/${name}`);
  }
  addHandlers(h: EventHandlers<Obj>): void {
    this.handlers.push(h);
  }
  put(o: Obj): void {
    const key = `${o.metadata.namespace}/${o.metadata.name}`;
    const old = this.objects.get(key);
    this.objects.set(key, o);
    for (const h of this.handlers) {
      if (old === undefined) h.add?.(o);
      else h.update?.(old, o);
    }
  }
  remove(namespace: string, name: string): void {
    const o = this.get(namespace, name);
    if (o === undefined) return;
    this.objects.delete(`${namespace}/${name}`);
    for (const h of this.handlers) h.delete?.(o);
  }
  /** As the informer forgets a namespace (or all) it stops watching: no delete event each. */
  drop(namespace: string | undefined): void {
    for (const key of [...this.objects.keys()])
      if (namespace === undefined || key.startsWith(`${namespace}/`)) this.objects.delete(key);
    for (const h of this.handlers) h.dropped?.(namespace);
  }
  resync(): void {
    for (const o of this.objects.values()) for (const h of this.handlers) h.update?.(o, o);
  }
}

const obj = (resourceVersion: string, data: string, name = 'a'): Obj => ({
  metadata: { namespace: 'ns', name, resourceVersion },
  data,
});

function setup(): { store: Store; mc: MutationCache<Obj> } {
  const store = new Store();
  const mc = new MutationCache(store);
  return { store, mc };
}

describe('MutationCache', () => {
  it('reads its own write through while the cache still shows the version it replaced', () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    mc.record(obj('2', 'mine'), '1');
    expect(mc.get('ns', 'a')).toEqual(obj('2', 'mine'));
    expect(mc.isStale('ns', 'a')).toBe(true);
    expect(mc.size).toBe(1);
  });

  it('gives the cache back once it shows the write, and forgets the write', () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    mc.record(obj('2', 'mine'), '1');
    store.put(obj('2', 'mine as the server stored it'));
    expect(mc.get('ns', 'a')).toEqual(obj('2', 'mine as the server stored it'));
    expect(mc.isStale('ns', 'a')).toBe(false);
    expect(mc.size).toBe(0);
  });

  it("takes someone else's later version over its own write", () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    mc.record(obj('2', 'mine'), '1');
    store.put(obj('3', 'theirs'));
    expect(mc.get('ns', 'a')?.data).toBe('theirs');
    expect(mc.size).toBe(0);
  });

  it('keeps the memory through a resync, which re-delivers the version it replaced', () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    mc.record(obj('2', 'mine'), '1');
    store.resync();
    expect(mc.get('ns', 'a')?.data).toBe('mine');
    expect(mc.isStale('ns', 'a')).toBe(true);
  });

  it('remembers nothing when the cache already shows the write, or for a create', () => {
    const { store, mc } = setup();
    store.put(obj('2', 'mine'));
    mc.record(obj('2', 'mine'), '1');
    expect(mc.size).toBe(0);
    mc.record(obj('5', 'created', 'b'), undefined);
    expect(mc.size).toBe(0);
    expect(mc.get('ns', 'b')).toBeUndefined();
  });

  it('remembers nothing when the cache has moved past the version the write was planned from', () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    // Someone else's version arrives between the read and the end of a write planned from '1'
    // (a status merge patch has no precondition, so the write succeeds all the same).
    store.put(obj('3', 'theirs'));
    mc.record(obj('4', 'mine'), '1');
    expect(mc.size).toBe(0);
    expect(mc.get('ns', 'a')?.data).toBe('theirs');
    expect(mc.isStale('ns', 'a')).toBe(false);
    // The same when the cache has gone on to the write itself and beyond.
    store.put(obj('4', 'mine'));
    store.put(obj('5', 'later'));
    mc.record(obj('4', 'mine'), '1');
    expect(mc.get('ns', 'a')?.data).toBe('later');
    expect(mc.size).toBe(0);
  });

  it('chains a write planned from its own earlier write while the cache lags both', () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    mc.record(obj('2', 'first'), '1');
    mc.record(obj('3', 'second'), '2');
    expect(mc.get('ns', 'a')?.data).toBe('second');
    // The first write arriving is a version the second replaced: the memory holds.
    store.put(obj('2', 'first'));
    expect(mc.get('ns', 'a')?.data).toBe('second');
    expect(mc.isStale('ns', 'a')).toBe(true);
    store.put(obj('3', 'second'));
    expect(mc.get('ns', 'a')?.data).toBe('second');
    expect(mc.size).toBe(0);
  });

  it('drops a write planned from a version it does not know (neither shown nor remembered)', () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    mc.record(obj('2', 'first'), '1');
    mc.record(obj('4', 'other'), '3');
    expect(mc.size).toBe(0);
    expect(mc.get('ns', 'a')?.data).toBe('old');
  });

  it('a write without a known resourceVersion is remembered until the next event', () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    mc.record({ metadata: { namespace: 'ns', name: 'a', resourceVersion: '' }, data: 'mine' }, '1');
    expect(mc.get('ns', 'a')?.data).toBe('mine');
    store.put(obj('2', 'mine'));
    expect(mc.get('ns', 'a')?.data).toBe('mine');
    expect(mc.size).toBe(0);
  });

  it('forgets on deletion and on request; reads change nothing', () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    store.put(obj('1', 'other', 'b'));
    mc.record(obj('2', 'mine'), '1');
    mc.record(obj('2', 'mine', 'b'), '1');
    for (let i = 0; i < 3; i++) mc.get('ns', 'a');
    expect(mc.size).toBe(2);
    store.remove('ns', 'a');
    expect(mc.get('ns', 'a')).toBeUndefined();
    mc.forget('ns', 'b');
    expect(mc.get('ns', 'b')?.data).toBe('other');
    expect(mc.size).toBe(0);
  });

  it('forgets what matches, and everything of a namespace its informer drops', () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    store.put(obj('1', 'old', 'b'));
    store.put({ metadata: { namespace: 'other', name: 'a', resourceVersion: '1' }, data: 'x' });
    mc.record(obj('2', 'mine'), '1');
    mc.record(obj('2', 'mine', 'b'), '1');
    mc.record(
      { metadata: { namespace: 'other', name: 'a', resourceVersion: '2' }, data: 'y' },
      '1',
    );
    expect(mc.size).toBe(3);
    mc.forgetWhere((o) => o.metadata.name === 'b');
    expect(mc.size).toBe(2);
    expect(mc.get('ns', 'b')?.data).toBe('old');
    store.drop('ns');
    expect(mc.size).toBe(1);
    expect(mc.get('other', 'a')?.data).toBe('y');
    store.drop(undefined);
    expect(mc.size).toBe(0);
  });

  it('keeps objects of the same name in different namespaces apart', () => {
    const { store, mc } = setup();
    store.put(obj('1', 'old'));
    store.put({ metadata: { namespace: 'other', name: 'a', resourceVersion: '1' }, data: 'x' });
    mc.record(obj('2', 'mine'), '1');
    expect(mc.get('other', 'a')?.data).toBe('x');
    expect(mc.isStale('other', 'a')).toBe(false);
  });
});
