// The import-boundary rule in eslint.config.js is what keeps src/'s layers apart; this proves it
// fires for an import upward and for one between sibling capabilities, and stays quiet for an
// import downward, on the project's own configuration.
import { describe, expect, it } from '@jest/globals';
import { ESLint } from 'eslint';

const root = new URL('..', import.meta.url).pathname;
const eslint = new ESLint({ cwd: root });

async function boundaryErrors(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: root + filePath });
  return (result?.messages ?? [])
    .filter((m) => m.ruleId === 'boundaries/dependencies')
    .map((m) => m.message);
}

describe('the layers of src/', () => {
  it('refuses an import from a higher layer', async () => {
    expect(
      await boundaryErrors(
        'src/runtime/clock.ts',
        "import { controllerName } from '../controllers/policy/controller.ts';\nexport const x = controllerName;\n",
      ),
    ).toEqual([
      'a module of layer runtime may not import layer controllers: see the layers in eslint.config.js',
    ]);
  }, 60_000);

  it('refuses an import between sibling capabilities', async () => {
    expect(
      await boundaryErrors(
        'src/health/state.ts',
        "import { canonical } from '../dns/lookup.ts';\nexport const x = canonical;\n",
      ),
    ).toHaveLength(1);
  }, 60_000);

  it('allows an import from a lower layer', async () => {
    expect(
      await boundaryErrors(
        'src/controllers/policy/controller.ts',
        "import { realClock } from '../../runtime/clock.ts';\nexport const x = realClock;\n",
      ),
    ).toEqual([]);
  }, 60_000);
});
