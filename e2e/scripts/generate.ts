// `npm run generate`: writes the ExternalBackend CRD generated from the zod schema (to crds/ and to
// the chart), the Dockerfile rendered from e2e/image/contents.env, the Grafana dashboard from
// e2e/scripts/dashboard.ts, the flag reference (docs/flags.md) and the chart's container args from
// the flag table in src/manager/flags.ts, and the chart's README and values-schema descriptions from
// the comments in values.yaml (e2e/scripts/chart-docs.ts). Tests fail when a committed file differs
// from what this writes (src/api/crd.test.ts, src/manager/flagdocs.test.ts, e2e/image.e2e.test.ts,
// e2e/alerts.e2e.test.ts, e2e/chart.e2e.test.ts).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { flagFiles } from '../../src/manager/flagdocs.ts';
import { generatedFiles } from '../../src/manager/render.ts';
import { renderDockerfile } from '../image/dockerfile.ts';
import {
  readmePath,
  renderChartReadme,
  renderValuesSchema,
  schemaPath,
  valueRows,
} from './chart-docs.ts';
import { renderDashboard } from './dashboard.ts';

const at = (path: string): string => fileURLToPath(new URL(`../../${path}`, import.meta.url));
const files = [
  ...generatedFiles(),
  ...flagFiles(),
  { path: at('Dockerfile'), content: renderDockerfile() },
  { path: at('charts/outrigger/dashboards/outrigger.json'), content: renderDashboard() },
  { path: schemaPath, content: await renderValuesSchema(valueRows()) },
  { path: readmePath, content: renderChartReadme() },
];
for (const { path, content } of files) {
  writeFileSync(path, content);
  process.stdout.write(`wrote ${path}\n`);
}
