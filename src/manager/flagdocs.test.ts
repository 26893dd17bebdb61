import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { load } from 'js-yaml';
import { format, resolveConfig } from 'prettier';
import { flagFiles, flagsDocPath, renderChartArgs, renderFlagsDoc } from './flagdocs.ts';
import { flags, type FlagRow } from './flags.ts';

const rows: readonly FlagRow[] = flags;
const chartRows = rows.filter((f) => f.chart !== undefined);
const chartFile = (rel: string): string =>
  readFileSync(new URL(`../../charts/outrigger/${rel}`, import.meta.url), 'utf8');

describe('files generated from the flag table', () => {
  it.each(flagFiles().map((f) => [f.path.replace(/^.*?\/(docs|charts)\//, '$1/'), f.content]))(
    '%s is committed exactly as generated (run `npm run generate` after a change)',
    (path, content) => {
      expect(readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8')).toBe(content);
    },
  );

  it('writes docs/flags.md as prettier would, so that generate and the format check agree', async () => {
    const doc = renderFlagsDoc();
    const options = (await resolveConfig(flagsDocPath)) ?? {};
    expect(await format(doc, { ...options, filepath: flagsDocPath })).toBe(doc);
  });

  it("lists every flag in the docs' table, in order, with its default", () => {
    const table = renderFlagsDoc()
      .split('\n')
      .filter((l) => l.startsWith('| `--'))
      .map((l) =>
        l
          .slice(1, -1)
          .split(' | ')
          .map((c) => c.trim()),
      );
    expect(table.map((cells) => cells[0])).toEqual(rows.map((f) => `\`--${f.name}\``));
    for (const [i, f] of rows.entries()) {
      const shown =
        f.default === undefined ? 'unset' : f.default === '' ? 'empty' : `\`${f.default}\``;
      expect(table[i]?.[1]).toBe(shown);
      if (f.chart?.value !== undefined) expect(table[i]?.[2]).toContain(`\`${f.chart.value}\``);
    }
  });
});

describe("the chart's args", () => {
  it('are the chart rows of the table, in order, and only those', () => {
    const passed = [...renderChartArgs().matchAll(/^- --([a-z-]+)=/gm)].map((m) => m[1]);
    expect(passed).toEqual(chartRows.map((f) => f.name));
  });

  it('come from the table alone: the Deployment writes no flag by hand', () => {
    const deployment = chartFile('templates/deployment.yaml');
    expect(deployment).toContain('{{- include "outrigger.flagArgs" . | nindent 12 }}');
    expect(deployment).not.toMatch(/^\s*- --/m);
  });

  it("set each flag from a value that values.yaml and its schema still have, with the table's default", () => {
    const values = load(chartFile('values.yaml')) as Record<string, unknown>;
    const schema = JSON.parse(chartFile('values.schema.json')) as {
      properties?: Record<string, unknown>;
    };
    for (const f of chartRows) {
      const key = f.chart?.value;
      if (key === undefined) continue;
      let value: unknown = values;
      let node: unknown = schema;
      for (const part of key.split('.')) {
        expect(value).toHaveProperty([part]);
        expect(node).toHaveProperty(['properties', part]);
        value = (value as Record<string, unknown>)[part];
        node = (node as { properties: Record<string, unknown> }).properties[part];
      }
      // A template reads the value through a helper (a port, or a release's recorded choice): the
      // rendered chart test (e2e/chart-flags.e2e.test.ts) checks what those pass.
      if (f.chart?.template !== undefined) continue;
      const asFlag = Array.isArray(value) ? value.join(',') : String(value);
      expect(`--${f.name}=${asFlag}`).toBe(`--${f.name}=${f.chart?.default ?? f.default ?? ''}`);
    }
  });
});
