// Lint for src/, test/ and scripts/: ESLint's and typescript-eslint's
// recommended rules. The plugins (AssemblyScript: plugin/, fixtures, bench
// candidates) and the bundle are not linted.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'lib/', 'node_modules/', 'plugin/', 'test/fixtures/', 'bench/candidates/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // Bodies from the API server, the registry and JSON files are read
      // field by field where they are used; `any` is allowed for them.
      '@typescript-eslint/no-explicit-any': 'off',
      // `const { managedFields: _m, ...rest } = x` drops fields on purpose.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
    },
  },
);
