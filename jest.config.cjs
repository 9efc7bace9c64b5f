/** Tests run against the TypeScript sources: swc strips types, and the "@ambient-ts/source"
 * export condition makes workspace packages resolve to each other's src/ without a build. */
module.exports = {
  testEnvironment: 'node',
  testEnvironmentOptions: { customExportConditions: ['@ambient-ts/source', 'node', 'require', 'default'] },
  roots: ['<rootDir>/packages', '<rootDir>/examples'],
  testMatch: ['**/test/**/*.test.ts'],
  transform: {
    '^.+\\.(t|j)sx?$': [
      '@swc/jest',
      { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } },
    ],
  },
  transformIgnorePatterns: ['/node_modules/'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testTimeout: 30000,
  // Network tests on a 2-core machine: keep parallelism modest so timeouts mean bugs, not load.
  maxWorkers: 2,
};
