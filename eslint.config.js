// One linter for the whole tree: ESLint with typescript-eslint's recommended rules. (Biome was the first
// choice, but its platform packages are not all on the registry this project installs from, so
// `npm ci` could not reproduce its lock file.) Formatting is Prettier's job (.prettierrc.json).
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.bench/', 'schemas/'] },
  eslint.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
);
