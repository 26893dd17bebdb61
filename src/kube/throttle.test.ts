import { describe, expect, it } from '@jest/globals';
import { Throttle } from './throttle.ts';

describe('Throttle', () => {
  it('lets a burst through at once, then paces requests at the rate', async () => {
    const t = new Throttle(50, 3);
    const start = Date.now();
    for (let i = 0; i < 3; i++) await t.acquire();
    expect(Date.now() - start).toBeLessThan(15);
    for (let i = 0; i < 5; i++) await t.acquire();
    // Five more tokens at 50/s take about 100 ms.
    expect(Date.now() - start).toBeGreaterThanOrEqual(90);
  });
});
