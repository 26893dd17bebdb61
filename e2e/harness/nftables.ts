// What a test compares to tell whether the harness left nftables rules behind. The listing is
// stateless (`nft -s`): counters and quotas are left out, so a host whose own rules count packets (a
// kubelet's, Docker's) does not fail the check while it runs. It is the whole ruleset and not only
// the tables the harness names, because a leak need not carry our names: kube-proxy run outside its
// namespace makes `ip kube-proxy`, a CNI plugin adds chains to the host's iptables-nft `nat` table.
import { spawnSync } from 'node:child_process';

/** The stateless ruleset of the host, or of network namespace `netns`. */
export function ruleset(netns?: string): string {
  const args = ['-s', 'list', 'ruleset'];
  const r =
    netns === undefined
      ? spawnSync('nft', args, { encoding: 'utf8' })
      : spawnSync('ip', ['netns', 'exec', netns, 'nft', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nft ${args.join(' ')}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Each line of a listing, prefixed with the table and chain (or set, map…) it belongs to. */
function placed(listing: string): string[] {
  const out: string[] = [];
  let table = '';
  let block = '';
  for (const raw of listing.split('\n')) {
    const line = raw.trim();
    if (line === '' || line === '}') {
      if (raw.startsWith('}')) table = '';
      else if (line === '}') block = '';
      continue;
    }
    if (raw.startsWith('table ')) {
      table = line.replace(/ \{$/, '');
      block = '';
      out.push(table);
      continue;
    }
    if (line.endsWith('{')) {
      block = line.replace(/ \{$/, '');
      out.push(`${table} / ${block}`);
      continue;
    }
    out.push(`${table} / ${block}: ${line}`);
  }
  return out;
}

/**
 * What changed between two listings, one "+ …" (new) or "- …" (gone) line per table, chain or rule,
 * naming its table and chain: an assertion failure says what leaked rather than printing two rulesets.
 */
export function rulesetChanges(before: string, after: string): string[] {
  const count = new Map<string, number>();
  for (const l of placed(before)) count.set(l, (count.get(l) ?? 0) + 1);
  const added: string[] = [];
  for (const l of placed(after)) {
    const n = count.get(l) ?? 0;
    if (n > 0) count.set(l, n - 1);
    else added.push(`+ ${l}`);
  }
  const gone = [...count].flatMap(([l, n]) => Array.from({ length: n }, () => `- ${l}`));
  return [...added, ...gone];
}
