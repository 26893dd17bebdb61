// `npm run generate`: writes the ExternalBackend CRD generated from the zod schema. A unit test
// (src/externalbackend/crd.test.ts) fails when the committed file differs from what this writes.
import { writeFileSync } from 'node:fs';
import { crdPath, renderCrd } from '../../src/externalbackend/render.ts';

writeFileSync(crdPath, renderCrd());
process.stdout.write(`wrote ${crdPath}\n`);
