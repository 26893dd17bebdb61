// `npm run generate`: writes the ExternalBackend CRD generated from the zod schema, to crds/ and to
// the chart, and the Dockerfile rendered from e2e/image/contents.env. Tests fail when a committed
// file differs from what this writes (src/externalbackend/crd.test.ts, e2e/image.e2e.test.ts).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { generatedFiles } from '../../src/externalbackend/render.ts';
import { renderDockerfile } from '../image/dockerfile.ts';

const files = [
  ...generatedFiles(),
  {
    path: fileURLToPath(new URL('../../Dockerfile', import.meta.url)),
    content: renderDockerfile(),
  },
];
for (const { path, content } of files) {
  writeFileSync(path, content);
  process.stdout.write(`wrote ${path}\n`);
}
