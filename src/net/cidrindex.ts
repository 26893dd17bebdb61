import ipaddr from 'ipaddr.js';

export type Addr = ipaddr.IPv4 | ipaddr.IPv6;

function toBig(addr: Addr): bigint {
  let n = 0n;
  for (const b of addr.toByteArray()) n = (n << 8n) | BigInt(b);
  return n;
}

interface Entry<T> {
  readonly order: number;
  readonly value: T;
}

/**
 * CIDR ranges to look addresses up in, in time proportional to the number of distinct prefix
 * lengths rather than the number of ranges: a cluster of thousands of Nodes adds thousands of pod
 * CIDRs and node addresses, and every address of every ExternalBackend is judged against them on
 * each reconcile. When several ranges contain an address, the one added first wins.
 */
export class CidrIndex<T> {
  private readonly families = {
    ipv4: new Map<number, Map<bigint, Entry<T>>>(),
    ipv6: new Map<number, Map<bigint, Entry<T>>>(),
  };
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Adds a range; throws on a malformed CIDR. */
  add(cidr: string, value: T): void {
    const [addr, len] = ipaddr.parseCIDR(cidr);
    const bits = addr.kind() === 'ipv4' ? 32 : 128;
    const byLength = this.families[addr.kind()];
    let m = byLength.get(len);
    if (m === undefined) {
      m = new Map();
      byLength.set(len, m);
    }
    const key = toBig(addr) >> BigInt(bits - len);
    if (!m.has(key)) m.set(key, { order: this.count, value });
    this.count++;
  }

  /** The value of the first-added range that contains `addr`, if any. */
  lookup(addr: Addr): T | undefined {
    const bits = addr.kind() === 'ipv4' ? 32 : 128;
    const n = toBig(addr);
    let best: Entry<T> | undefined;
    for (const [len, m] of this.families[addr.kind()]) {
      const e = m.get(n >> BigInt(bits - len));
      if (e !== undefined && (best === undefined || e.order < best.order)) best = e;
    }
    return best?.value;
  }

  /** The values of every range that contains `addr`, first-added first. */
  lookupAll(addr: Addr): T[] {
    const bits = addr.kind() === 'ipv4' ? 32 : 128;
    const n = toBig(addr);
    const hits: Entry<T>[] = [];
    for (const [len, m] of this.families[addr.kind()]) {
      const e = m.get(n >> BigInt(bits - len));
      if (e !== undefined) hits.push(e);
    }
    return hits.sort((a, b) => a.order - b.order).map((e) => e.value);
  }
}
