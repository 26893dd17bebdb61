// The docs and the tests change together: each figure in e2e/claims.ts is still stated, word for
// word, where it says, and its test still holds a measurement to it.
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { claims } from './claims.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const flat = (s: string) => s.replace(/\s+/g, ' ');
const read = (path: string) => flat(readFileSync(`${root}${path}`, 'utf8'));

describe('the figures the docs state', () => {
  for (const [id, c] of Object.entries(claims)) {
    it(`${id}: ${c.doc} says “${c.says}”, and ${c.test} holds it to ${String(c.bound)} ${c.unit}`, () => {
      expect(read(c.doc)).toContain(flat(c.says));
      expect(read(c.test)).toMatch(new RegExp(`claim\\( ?'${id}'`));
      // A bound under the stated figure would fail the runs the figure came from.
      expect(c.bound).toBeGreaterThanOrEqual(c.stated);
      expect(c.why.length).toBeGreaterThan(20);
    });
  }
});
