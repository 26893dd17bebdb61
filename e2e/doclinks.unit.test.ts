// Every relative link in the hand-written docs leads somewhere: the file exists, and an anchor
// names a heading of that file (as GitHub derives anchors from headings). Pages move; this keeps
// README.md, docs/, SECURITY.md and the examples' READMEs pointing at where things went.
import { describe, expect, it } from '@jest/globals';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));

// A page another change adds (the flag table generated from the flag definitions): a link to it
// counts once it exists, and is not an error until then.
const pending = new Set(['docs/flags.md']);

function markdownUnder(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return markdownUnder(path);
    return name.endsWith('.md') ? [path] : [];
  });
}

const pages = [
  'README.md',
  'SECURITY.md',
  'crds/README.md',
  ...markdownUnder('docs'),
  ...markdownUnder('examples'),
];

/** The text outside fenced code blocks and inline code spans. */
function prose(text: string): string {
  return text.replace(/^```[^\n]*\n[\s\S]*?^```[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchors for a page's headings. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const body = text.replace(/^```[^\n]*\n[\s\S]*?^```[^\n]*$/gm, '');
  for (const m of body.matchAll(/^#{1,6} (.+)$/gm)) {
    const base = (m[1] ?? '')
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${String(n)}`);
  }
  return out;
}

describe('relative links in the docs', () => {
  it.each(pages)('%s: every relative link points at an existing file and heading', (page) => {
    const text = readFileSync(join(root, page), 'utf8');
    const broken: string[] = [];
    for (const m of prose(text).matchAll(/\]\(([^)\s]+)\)/g)) {
      const target = m[1] ?? '';
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      const [file = '', anchor] = target.split('#');
      const path = file === '' ? page : relative(root, join(root, dirname(page), file));
      if (!existsSync(join(root, path))) {
        if (!pending.has(path)) broken.push(`${target} (no file ${path})`);
        continue;
      }
      if (anchor !== undefined && !anchors(readFileSync(join(root, path), 'utf8')).has(anchor)) {
        broken.push(`${target} (no heading #${anchor} in ${path})`);
      }
    }
    expect(broken).toEqual([]);
  });
});
