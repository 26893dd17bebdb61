// `npm run generate`: writes the ExternalBackend CRD generated from the zod schema, to crds/ and to
// the chart. A unit test
// (src/externalbackend/crd.test.ts) fails when the committed file differs from what this writes.
import { writeFileSync } from 'node:fs';
import { generatedFiles } from '../../src/externalbackend/render.ts';

for (const { path, content } of generatedFiles()) {
  writeFileSync(path, content);
  process.stdout.write(`wrote ${path}\n`);
}
