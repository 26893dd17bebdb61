// Runs e2e test files in a shuffled order: Jest's default order depends on its cache (failed files
// first, then by recorded duration), so a fresh clone and a warm machine ran the files in different
// orders and a file that only passes after another one could hide. The order comes from a seed,
// E2E_SEED or a random one, which the summary reporter prints so a failing order can be replayed.
// Unit tests keep Jest's order: they run in parallel workers and share no state.
import { createHash } from 'node:crypto';
import { relative } from 'node:path';
import Sequencer from '@jest/test-sequencer';

const BaseSequencer = Sequencer.default ?? Sequencer;
const seedKey = Symbol.for('outrigger.e2eSeed');

/** Mulberry32: a small deterministic generator, enough to shuffle a list by a 32-bit seed. */
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of this run: E2E_SEED when set (a replay), else a fresh one. */
export function e2eSeed() {
  const given = process.env.E2E_SEED;
  if (given !== undefined && given !== '') {
    const n = Number(given);
    if (!Number.isInteger(n) || n < 0 || n > 0xffffffff)
      throw new Error(`E2E_SEED must be an integer from 0 to 4294967295, not "${given}"`);
    return n;
  }
  return createHash('sha256')
    .update(`${process.pid}:${Date.now()}:${Math.random()}`)
    .digest()
    .readUInt32LE(0);
}

/** Shuffles `items` by `seed`; the result depends only on the seed and the items' keys. */
export function shuffle(items, seed, key) {
  const out = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const next = random(seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

export default class ShuffledE2eSequencer extends BaseSequencer {
  sort(tests) {
    const isE2e = (t) => t.context.config.displayName?.name === 'e2e';
    const e2e = tests.filter(isE2e);
    const rest = tests.filter((t) => !isE2e(t));
    if (e2e.length === 0) return super.sort(tests);
    const seed = e2eSeed();
    const key = (t) => relative(t.context.config.rootDir, t.path);
    const order = shuffle(e2e, seed, key);
    // The reporter runs in this process: it prints the seed and the order at the start of the run,
    // the seed again at the end.
    globalThis[seedKey] = { seed, files: order.map(key) };
    return [...super.sort(rest), ...order];
  }
}
