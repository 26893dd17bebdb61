// @ts-check
import js from '@eslint/js';
import prettier from 'eslint-config-prettier';
import tseslint from 'typescript-eslint';

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
