// The linter (`npm run lint`, also run by `npm test`): ESLint with typescript-eslint's type-aware
// rules, because a floating promise is only visible with the types of the libraries it comes from
// (docs/adr/0019-lint-and-format.md). Formatting is Biome's (biome.json), so no rule here is about style.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      '**/node_modules/**',
      '.data/**',
      '**/generated/**',
      'clients/storefront/dist/**',
      'clients/sdk/dist/**',
      'gateway/explorer/dist/**',
      'bench/results/**',
      'eslint.config.js',
    ],
  },
  js.configs.recommended,
  tseslint.configs.eslintRecommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    rules: {
      // node:test's describe/it return promises the runner itself awaits.
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] },
          ],
        },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true }],
      '@typescript-eslint/no-unused-expressions': 'error',
      'prefer-const': ['error', { destructuring: 'all' }],
      'no-unused-vars': 'off',
      'no-unused-expressions': 'off',
    },
  },
);
