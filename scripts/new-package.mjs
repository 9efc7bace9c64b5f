#!/usr/bin/env node
// Scaffolds packages/<name> with the layout every package follows (see ../shared/STYLE.md).
// Usage: node scripts/new-package.mjs <name> "<description>" [--bin <binName>]
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [name, description, flag, binName] = process.argv.slice(2);
if (!name || !description) {
  console.error('usage: node scripts/new-package.mjs <name> "<description>" [--bin <binName>]');
  process.exit(2);
}
const dir = join('packages', name);
if (existsSync(dir)) {
  console.error(`${dir} already exists; refusing to overwrite it`);
  process.exit(2);
}
mkdirSync(join(dir, 'src'), { recursive: true });
mkdirSync(join(dir, 'test'), { recursive: true });
const pkg = {
  name: `@ambient-ts/${name}`,
  version: '0.1.0',
  description,
  license: 'Apache-2.0',
  type: 'module',
  sideEffects: false,
  engines: { node: '>=20' },
  exports: {
    '.': {
      '@ambient-ts/source': './src/index.ts',
      import: { types: './dist/index.d.ts', default: './dist/index.js' },
      require: { types: './dist/index.d.cts', default: './dist/index.cjs' },
    },
    './package.json': './package.json',
  },
  main: './dist/index.cjs',
  module: './dist/index.js',
  types: './dist/index.d.cts',
  files: ['dist', 'src', 'README.md'],
  scripts: { build: 'tsup' },
  publishConfig: { access: 'public' },
  repository: { type: 'git', url: 'git+https://example.invalid/ambient-ts.git', directory: dir },
  dependencies: {},
};
if (flag === '--bin' && binName) pkg.bin = { [binName]: './dist/cli.js' };
writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
const entries = flag === '--bin' ? "['src/index.ts', 'src/cli.ts']" : "['src/index.ts']";
writeFileSync(
  join(dir, 'tsup.config.ts'),
  `import { defineConfig } from 'tsup';

export default defineConfig({
  entry: ${entries},
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'node20',
  removeNodeProtocol: false,
});
`,
);
writeFileSync(join(dir, 'src', 'index.ts'), `export {};\n`);
writeFileSync(join(dir, 'README.md'), `# @ambient-ts/${name}\n\n${description}\n`);
console.log(`created ${dir}`);
