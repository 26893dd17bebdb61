// The chart's documentation, from one source: the `# --` comments of charts/outrigger/values.yaml.
// helm-docs renders README.md from README.md.gotmpl, and the same comments become the descriptions
// in values.schema.json. helm-docs has no schema output, so its parsed rows are read through a
// template that prints them as JSON. `npm run generate` writes both files; the chart test fails when
// either differs from what this renders, or when a value or a schema key has no description.
// (helm-docs' own strict mode only sees old-style `# key -- ...` comments, so the check is here.)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import { ensureHelmDocs } from '../harness/binaries.ts';

export const chartDir = fileURLToPath(new URL('../../charts/outrigger', import.meta.url));
export const readmePath = join(chartDir, 'README.md');
export const schemaPath = join(chartDir, 'values.schema.json');

export interface ValueRow {
  readonly key: string;
  readonly type: string;
  readonly description: string;
}

interface HelmDocsRow {
  readonly Key: string;
  readonly Type: string;
  readonly Description: string;
  readonly AutoDescription: string;
}

function helmDocs(templateFile: string): string {
  const r = spawnSync(
    ensureHelmDocs(),
    [
      '--dry-run',
      `--chart-search-root=${join(chartDir, '..')}`,
      `--chart-to-generate=${chartDir}`,
      `--template-files=${templateFile}`,
      '--sort-values-order=file',
      '--skip-version-footer',
      '--log-level=error',
    ],
    { encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`helm-docs failed (exit ${String(r.status)}):\n${r.stderr}`);
  return r.stdout;
}

/** Every value helm-docs finds in values.yaml, in file order, with its description. */
export function valueRows(): ValueRow[] {
  const dir = mkdtempSync(join(tmpdir(), 'outrigger-helm-docs-'));
  try {
    const template = join(dir, 'rows.gotmpl');
    writeFileSync(template, '{{ toJson .Values }}\n');
    const rows = JSON.parse(helmDocs(template)) as HelmDocsRow[];
    return rows.map((r) => ({
      key: r.Key,
      type: r.Type,
      description: (r.Description || r.AutoDescription).trim(),
    }));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The chart README as helm-docs writes it from README.md.gotmpl. */
export function renderChartReadme(): string {
  return helmDocs(join(chartDir, 'README.md.gotmpl'));
}

interface SchemaNode {
  description?: string;
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  [k: string]: unknown;
}

/** Paths of schema keys without a description (the chart test requires none). */
export function undescribed(node: SchemaNode, path = ''): string[] {
  const out: string[] = [];
  for (const [key, child] of Object.entries(node.properties ?? {})) {
    const at = path === '' ? key : `${path}.${key}`;
    if (child.description === undefined || child.description.trim() === '') out.push(at);
    out.push(...undescribed(child, at));
  }
  if (node.items !== undefined) out.push(...undescribed(node.items, `${path}[]`));
  // The branches of an alternative describe their own fields (an object or a bare name, say).
  for (const branch of [...(node.anyOf ?? []), ...(node.oneOf ?? [])])
    out.push(...undescribed(branch, path));
  return out;
}

/**
 * values.schema.json with the description of every documented value set from its comment. Keys
 * that helm-docs does not list (objects whose children carry the comments, and the fields inside
 * list items) keep the descriptions written in the schema itself.
 */
export async function renderValuesSchema(rows: readonly ValueRow[]): Promise<string> {
  const schema = JSON.parse(readFileSync(schemaPath, 'utf8')) as SchemaNode;
  for (const row of rows) {
    if (row.description === '') throw new Error(`values.yaml: ${row.key} has no "# --" comment`);
    const parts = row.key.split('.');
    const last = parts.pop() ?? '';
    let parent: SchemaNode | undefined = schema;
    for (const part of parts) parent = parent?.properties?.[part];
    const node = parent?.properties?.[last];
    if (parent?.properties === undefined || node === undefined)
      throw new Error(`values.schema.json has no key ${row.key} (values.yaml has)`);
    // The description first, where a reader of the schema looks.
    const rest: SchemaNode = { ...node };
    delete rest.description;
    parent.properties[last] = { description: row.description, ...rest };
  }
  const config = (await resolveConfig(schemaPath)) ?? {};
  return format(JSON.stringify(schema), { ...config, parser: 'json' });
}
