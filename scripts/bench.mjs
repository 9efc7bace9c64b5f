#!/usr/bin/env node
// `pnpm bench [filter]`: runs every packages/*/bench/*.bench.ts (or those whose path contains the filter),
// one process each, against the TypeScript sources. Each benchmark prints its own table with the
// baselines it measured in the same run. Benchmarks are not tests and are not part of CI.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const filter = process.argv[2] ?? '';
const files = [];
for (const pkg of readdirSync(join(root, 'packages'))) {
  const dir = join(root, 'packages', pkg, 'bench');
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).sort()) {
    if (f.endsWith('.bench.ts') && join(dir, f).includes(filter)) files.push(join(dir, f));
  }
}
if (files.length === 0) {
  console.error(`no benchmark matches ${JSON.stringify(filter)}`);
  process.exit(2);
}
let failed = 0;
for (const file of files) {
  console.log(`\n## ${relative(root, file)}\n`);
  const r = spawnSync(process.execPath, ['--conditions=@ambient-ts/source', '--import', 'tsx', '--expose-gc', file], {
    stdio: 'inherit',
    cwd: root,
  });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
