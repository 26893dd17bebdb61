import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { currentConcern, withConcern } from './errors.ts';
import { FairPool } from './fairpool.ts';

beforeEach(() => {
  jest.useFakeTimers();
});
afterEach(() => {
  jest.useRealTimers();
});

interface Row {
  readonly name: string;
  readonly concurrency: number;
  readonly perTenant?: number;
  /** Tasks in the order they are added: "<namespace>/<backend>/<id>:<seconds it runs>". */
  readonly tasks: readonly string[];
  /** Start time (s) of each task id. */
  readonly starts: Readonly<Record<string, number>>;
  /** Full start order, when it matters beyond the times. */
  readonly order?: readonly string[];
}

const rows: Row[] = [
  {
    name: 'a silent neighbour (60 s timeouts) leaves half the pool free: the victim starts at once',
    concurrency: 4,
    tasks: [
      'noisy/db/n1:60',
      'noisy/db/n2:60',
      'noisy/db/n3:60',
      'noisy/db/n4:60',
      'team/web/v1:1',
    ],
    starts: { n1: 0, n2: 0, v1: 0, n3: 60, n4: 60 },
  },
  {
    name: 'the victim’s later probes do not queue behind the neighbour’s backlog',
    concurrency: 2,
    tasks: ['noisy/db/n1:60', 'noisy/db/n2:60', 'noisy/db/n3:60', 'team/web/v1:1', 'team/web/v2:1'],
    starts: { n1: 0, v1: 0, v2: 1, n2: 60, n3: 120 },
  },
  {
    name: 'namespaces take turns (round-robin), not first-come first-served',
    concurrency: 1,
    tasks: ['a/x/a1:1', 'a/x/a2:1', 'a/x/a3:1', 'b/y/b1:1', 'b/y/b2:1'],
    starts: { a1: 0, b1: 1, a2: 2, b2: 3, a3: 4 },
    order: ['a1', 'b1', 'a2', 'b2', 'a3'],
  },
  {
    name: 'within a namespace, backends take turns',
    concurrency: 1,
    tasks: ['a/x/x1:1', 'a/x/x2:1', 'a/x/x3:1', 'a/y/y1:1'],
    starts: { x1: 0, y1: 1, x2: 2, x3: 3 },
    order: ['x1', 'y1', 'x2', 'x3'],
  },
  {
    name: 'one backend’s own probes keep their order',
    concurrency: 3,
    perTenant: 3,
    tasks: ['a/x/1:5', 'a/x/2:1', 'a/x/3:1', 'a/x/4:1'],
    starts: { '1': 0, '2': 0, '3': 0, '4': 1 },
    order: ['1', '2', '3', '4'],
  },
  {
    name: 'alone, a namespace still gets only its share (the rest stays free for newcomers)',
    concurrency: 4,
    tasks: ['a/x/1:10', 'a/x/2:10', 'a/x/3:10', 'a/x/4:10'],
    starts: { '1': 0, '2': 0, '3': 10, '4': 10 },
  },
  {
    name: 'three namespaces with a pool of two: nobody waits more than one turn',
    concurrency: 2,
    tasks: ['a/x/a1:2', 'a/x/a2:2', 'a/x/a3:2', 'b/y/b1:2', 'c/z/c1:2'],
    starts: { a1: 0, b1: 0, c1: 2, a2: 2, a3: 4 },
  },
];

describe('FairPool', () => {
  it.each(rows)('$name', async (row) => {
    const pool = new FairPool({
      concurrency: row.concurrency,
      ...(row.perTenant !== undefined ? { perTenant: row.perTenant } : {}),
    });
    const started: Record<string, number> = {};
    const order: string[] = [];
    const t0 = Date.now();
    const all = row.tasks.map((spec) => {
      const [path = '', secs = '0'] = spec.split(':');
      const [ns = '', backend = '', id = ''] = path.split('/');
      return pool.run([ns, backend], async () => {
        started[id] = (Date.now() - t0) / 1000;
        order.push(id);
        await new Promise((r) => setTimeout(r, Number(secs) * 1000));
        return id;
      });
    });
    await jest.advanceTimersByTimeAsync(1_000_000);
    expect(await Promise.all(all)).toHaveLength(row.tasks.length);
    expect(started).toMatchObject(row.starts);
    if (row.order) expect(order).toEqual(row.order);
    await pool.onIdle();
    expect(pool.active + pool.pending).toBe(0);
  });

  it('passes a task’s rejection to its caller and keeps running others', async () => {
    const pool = new FairPool({ concurrency: 1 });
    const failed = pool.run(['a', 'x'], () => Promise.reject(new Error('boom')));
    const ok = pool.run(['a', 'x'], () => Promise.resolve('fine'));
    await expect(failed).rejects.toThrow('boom');
    await expect(ok).resolves.toBe('fine');
  });

  it('clear() drops waiting tasks; onIdle() waits for running ones', async () => {
    const pool = new FairPool({ concurrency: 1 });
    let finished = 0;
    const slow = pool.run(['a', 'x'], async () => {
      await new Promise((r) => setTimeout(r, 1000));
      finished++;
    });
    let dropped = false;
    pool
      .run(['a', 'x'], () => {
        dropped = true;
        return Promise.resolve();
      })
      .catch(() => undefined);
    expect(pool.pending).toBe(1);
    pool.clear();
    expect(pool.pending).toBe(0);
    const idle = pool.onIdle();
    await jest.advanceTimersByTimeAsync(1000);
    await idle;
    await slow;
    expect(finished).toBe(1);
    expect(dropped).toBe(false);
  });

  it('forgets idle tenants: a thousand namespaces that came and went leave at most a sweep’s worth', async () => {
    const pool = new FairPool({ concurrency: 1 });
    for (let i = 0; i < 3000; i++)
      await pool.run([`ns-${String(i)}`, 'x'], () => Promise.resolve());
    expect(pool.tenants).toBeGreaterThan(0);
    expect(pool.tenants).toBeLessThanOrEqual(1024);
    await pool.onIdle();
    pool.clear();
    expect(pool.tenants).toBe(0);
  });

  it('runs a task that had to wait in the context it was submitted from', async () => {
    const pool = new FairPool({ concurrency: 1 });
    const seen: (string | undefined)[] = [];
    const task = (): Promise<void> => {
      seen.push(currentConcern()?.object);
      return new Promise((r) => setTimeout(r, 10));
    };
    const first = withConcern({ object: 'a' }, () => pool.run(['ns1', 'x'], task));
    // Started when the first ends, from inside the first's context.
    const second = withConcern({ object: 'b' }, () => pool.run(['ns2', 'y'], task));
    await jest.advanceTimersByTimeAsync(20);
    await Promise.all([first, second]);
    expect(seen).toEqual(['a', 'b']);
  });

  it('gets its slot back from a task that throws before returning a promise', async () => {
    const pool = new FairPool({ concurrency: 1 });
    const thrown = pool.run(['a', 'x'], () => {
      throw new Error('at once');
    });
    await expect(thrown).rejects.toThrow('at once');
    pool.submit(['a', 'x'], () => {
      throw new Error('not a promise');
    });
    await expect(pool.run(['a', 'x'], () => Promise.resolve('after'))).resolves.toBe('after');
    expect(pool.active).toBe(0);
  });
});
