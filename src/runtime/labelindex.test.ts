// The label index answers every selector as a scan of the cache with selectorMatches would, after
// any sequence of adds, relabels, renames into new objects, deletes and dropped namespaces
// (fast-check), and narrows the look to the smallest matching bucket.
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { LabelIndex } from './labelindex.ts';
import { selectorMatches, type Labels } from './labels.ts';
import { Store } from './store.ts';

interface Pod {
  readonly metadata: {
    readonly namespace: string;
    readonly name: string;
    readonly uid: string;
    readonly labels?: Labels;
  };
}

const labels = fc.dictionary(
  fc.constantFrom('app', 'tier', 'hash'),
  fc.constantFrom('a', 'b', 'c'),
  {
    maxKeys: 3,
  },
);
const op = fc.oneof(
  fc.record({
    kind: fc.constant('upsert' as const),
    ns: fc.constantFrom('n1', 'n2'),
    name: fc.constantFrom('p1', 'p2', 'p3', 'p4'),
    uid: fc.constantFrom('u1', 'u2'),
    labels: fc.option(labels, { nil: undefined }),
  }),
  fc.record({
    kind: fc.constant('remove' as const),
    ns: fc.constantFrom('n1', 'n2'),
    name: fc.constantFrom('p1', 'p2', 'p3', 'p4'),
  }),
  fc.record({ kind: fc.constant('drop' as const), ns: fc.constantFrom('n1', 'n2', undefined) }),
);
const names = (pods: readonly Pod[]): string[] => pods.map((p) => p.metadata.name).sort();

describe('LabelIndex', () => {
  it('selects what a scan of the cache selects, after any sequence of changes', () => {
    fc.assert(
      fc.property(
        fc.array(op, { maxLength: 40 }),
        fc.array(fc.option(labels, { nil: undefined }), { minLength: 1, maxLength: 5 }),
        fc.nat(40),
        (ops, selectors, indexAt) => {
          const store = new Store<Pod>('pods');
          let index: LabelIndex<Pod> | undefined;
          ops.forEach((o, i) => {
            // The index may be made on a cache that already holds objects.
            if (i === indexAt) index = new LabelIndex(store);
            if (o.kind === 'upsert')
              store.upsert({
                metadata: {
                  namespace: o.ns,
                  name: o.name,
                  uid: o.uid,
                  ...(o.labels ? { labels: o.labels } : {}),
                },
              });
            else if (o.kind === 'remove') {
              const old = store.get(o.ns, o.name);
              if (old !== undefined) store.remove(old);
            } else store.drop(o.ns);
          });
          index ??= new LabelIndex(store);
          for (const sel of selectors)
            for (const ns of ['n1', 'n2']) {
              const scan = store.list(ns).filter((p) => selectorMatches(sel, p.metadata.labels));
              expect(names(index.select(ns, sel))).toEqual(names(scan));
            }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('keeps a pod found by the pairs an update leaves as they were', () => {
    const store = new Store<Pod>('pods');
    const index = new LabelIndex(store);
    const pod = (labels: Labels): Pod => ({
      metadata: { namespace: 'n', name: 'p', uid: 'u', labels },
    });
    store.upsert(pod({ app: 'web', tier: 'a' }));
    store.upsert(pod({ app: 'web', tier: 'b' }));
    expect(names(index.select('n', { app: 'web' }))).toEqual(['p']);
    expect(index.select('n', { tier: 'a' })).toEqual([]);
    expect(names(index.select('n', { tier: 'b' }))).toEqual(['p']);
    store.drop('n');
    expect(index.select('n', { app: 'web' })).toEqual([]);
  });

  it('reads only the smallest bucket of the selector', () => {
    const store = new Store<Pod>('pods');
    const index = new LabelIndex(store);
    for (let i = 0; i < 100; i++)
      store.upsert({
        metadata: {
          namespace: 'n',
          name: `p${String(i)}`,
          uid: String(i),
          labels: { app: 'web', shard: String(i % 10) },
        },
      });
    let reads = 0;
    const get = store.get.bind(store);
    store.get = (ns, name) => {
      reads++;
      return get(ns, name);
    };
    expect(index.select('n', { app: 'web', shard: '3' })).toHaveLength(10);
    expect(reads).toBe(10);
    expect(index.select('n', { app: 'web', shard: 'none' })).toEqual([]);
    expect(index.select('n', undefined)).toEqual([]);
    expect(index.select('n', {})).toHaveLength(100);
  });
});
