// The benchmark's readings of /proc and of V8's allocation profile, on fixed inputs.
import { describe, expect, it } from '@jest/globals';
import { topAllocators, totalAllocated, type AllocationNode } from './inspector.ts';
import { parseStat, threadCoresBetween } from './observe.ts';

describe('parseStat', () => {
  it('reads the name (spaces and parentheses included) and the user and system ticks', () => {
    // Fields after the name: state ppid pgrp session tty tpgid flags minflt cminflt majflt
    // cmajflt utime stime ...
    const line = '4242 (V8 Worker (2)) S 1 4242 4242 0 -1 4194560 10 0 0 0 731 112 0 0 20 0 9';
    expect(parseStat(line)).toEqual({ comm: 'V8 Worker (2)', utime: 731, stime: 112 });
  });
});

describe('threadCoresBetween', () => {
  it('divides each difference by the window, and counts a thread new since the first reading whole', () => {
    const before = { userSeconds: 10, systemSeconds: 4, mainSeconds: 12, others: { a: 2 } };
    const after = { userSeconds: 16, systemSeconds: 6, mainSeconds: 18, others: { a: 3, b: 1 } };
    expect(threadCoresBetween(before, after, 10)).toEqual({
      userSeconds: 0.6,
      systemSeconds: 0.2,
      mainSeconds: 0.6,
      others: { a: 0.1, b: 0.1 },
    });
  });
});

describe('allocation profiles', () => {
  const node = (
    functionName: string,
    url: string,
    selfSize: number,
    children: AllocationNode[] = [],
  ): AllocationNode => ({ callFrame: { functionName, url, lineNumber: 9 }, selfSize, children });
  const profile = {
    head: node('(root)', '', 0, [
      node('run', 'file:///w/src/health/kinds/tcp.ts', 100, [
        node('connect', 'node:net', 400),
        node('', 'file:///w/node_modules/x/y.js', 50),
      ]),
      node('tick', 'file:///w/src/runtime/clock.ts', 300),
    ]),
  };

  it('sums every sampled byte', () => {
    expect(totalAllocated(profile)).toBe(850);
  });

  it('ranks functions by the bytes they allocated themselves, each with its caller', () => {
    expect(topAllocators(profile, 3)).toEqual([
      { where: 'connect node:net:10 < run health/kinds/tcp.ts:10', bytes: 400 },
      { where: 'tick runtime/clock.ts:10 < (root) :10', bytes: 300 },
      { where: 'run health/kinds/tcp.ts:10 < (root) :10', bytes: 100 },
    ]);
  });
});
