// typescript-eslint with type information: the rules that catch the bugs a dev loop and a
// deploy cannot afford (a promise nobody awaits loses its error and its ordering; an async
// function passed where a sync callback is expected runs unobserved). `just lint`; `just test`
// runs it.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['node_modules/**', 'tanka/vendor/**', '**/*.d.ts'] },
  {
    files: ['**/*.ts'],
    extends: [js.configs.recommended, ...tseslint.configs.recommended],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe/it return promises the runner itself awaits
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite'] },
          ],
        },
      ],
      // checksVoidReturn on arguments too: `process.on('SIGINT', async …)` or `forEach(async …)`
      // is exactly the callback whose rejection nobody sees (JSX attributes: we have none)
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' },
      ],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      'no-empty': ['error', { allowEmptyCatch: true }],
      'no-control-regex': 'off',
      // tests match column layouts: two spaces written as two spaces read better than {2}
      'no-regex-spaces': 'off',
      // `let x = []; try { x = … } finally { use x }` is how a value outlives a try: not useless
      'no-useless-assignment': 'off',
    },
  },
  {
    files: ['**/*.mjs'],
    extends: [js.configs.recommended],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        Buffer: 'readonly',
        performance: 'readonly',
      },
    },
  },
  {
    // Static imports below the command boundary: a module's dependencies show at its top.
    // Only commands/ and bin/ decide what loads lazily (start-up: `--help` must not load a
    // whole flow); core/ts-import.ts loads a namespace's namespace.ts by a computed path.
    files: ['shared/**/*.ts', 'shared/**/*.mjs'],
    ignores: ['shared/commands/**', 'shared/bin/**', 'shared/core/ts-import.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        {
          selector: 'ImportExpression',
          message:
            'import() only in shared/commands/ or shared/bin/ (they decide what loads lazily): import it statically here.',
        },
      ],
    },
  },
)
