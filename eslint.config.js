// @ts-check
import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

const runtime = ['runtime'];
const base = [...runtime, 'net'];
const capabilities = [...base, 'health', 'dns'];
const api = [...capabilities, 'api'];
const domain = [...api, 'sources', 'policy', 'endpoints', 'quorum'];
/** Each layer and what it may import besides itself. */
const layers = [
  ['runtime', []],
  ['net', runtime],
  ['health', base],
  ['dns', base],
  ['api', capabilities],
  ['sources', api],
  ['policy', api],
  ['endpoints', api],
  ['quorum', api],
  ['controllers', domain],
  ['manager', [...domain, 'controllers']],
];

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'node_modules/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  ...tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // @kubernetes/client-node's generated models (V1Pod, ...) are classes that the library itself
      // serializes from plain objects by attribute maps, never by prototype; its documented usage
      // passes object literals and spreads read objects. These two rules would flag every API call.
      '@typescript-eslint/no-unsafe-class-instance-assignment': 'off',
      '@typescript-eslint/no-misused-spread': 'off',
      // A `void`-discarded promise is still a rejection nobody handles: every fire-and-forget
      // promise must say what happens when it fails.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: false }],
      // `import { type A } from 'm'` keeps `import 'm'` when types are stripped: it loads m.
      '@typescript-eslint/no-import-type-side-effects': 'error',
    },
  },
  {
    // The layers of src/, lowest first: a module may import its own layer and those below it,
    // never one above, so the generic machinery never learns of a controller and the API never of
    // a reconciler (docs/architecture.md). Sibling capabilities stay apart too.
    // Tests may build on layers above the one they test (a probe kind's test parses a whole spec).
    files: ['src/**/*.ts'],
    // src/main.ts, the entry point, sits above every layer and nothing imports it.
    ignores: ['src/**/*.test.ts', 'src/**/*.test-helpers.ts', 'src/main.ts'],
    plugins: { boundaries },
    settings: {
      'boundaries/include': ['src/**/*.ts'],
      'boundaries/elements': layers.map(([type]) => ({ type, pattern: `src/${type}` })),
    },
    rules: {
      'boundaries/dependencies': [
        'error',
        {
          default: 'disallow',
          message:
            'a module of layer {{from.type}} may not import layer {{to.type}}: see the layers in eslint.config.js',
          policies: layers.map(([type, below]) => ({
            from: { element: { type } },
            allow: { to: { element: { types: { anyOf: [type, ...below] } } } },
          })),
        },
      ],
      'boundaries/no-unknown-files': 'error',
      // Loading client-node costs about 80 MiB of RSS (its generated models load whole): outrigger
      // uses its types only, and runtime/kubeconfig.ts loads it for the rare kubeconfig forms.
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            {
              name: '@kubernetes/client-node',
              allowTypeImports: true,
              message:
                'types only: requests go through runtime/rest.ts (see runtime/kubeconfig.ts)',
            },
          ],
        },
      ],
    },
  },
  {
    // A retry helper retries what throws: an `expect` inside one would have its failure taken for
    // "not yet" and retried until it happened to pass. Wait for a value, then assert on it.
    files: ['e2e/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...['waitFor', 'until', 'eventually', 'retry', 'step'].map((name) => ({
          selector: `CallExpression[callee.name='${name}'] CallExpression[callee.name='expect']`,
          message: `expect inside ${name}(): its retry would swallow the failure; wait for a value, then assert`,
        })),
      ],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly' },
    },
  },
  prettier,
);
