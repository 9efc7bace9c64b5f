#!/usr/bin/env node
// `pnpm demo`: the project's main job. Until the mesh demo (control plane + two ztunnels) lands, it runs
// the embed-hbone example: a local TCP listener whose connections cross an mTLS HBONE tunnel to an echo service.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const entry = resolve(root, 'examples/embed-hbone/src/main.ts');
const r = spawnSync(
  process.execPath,
  ['--conditions=@ambient-ts/source', '--import', 'tsx', entry, ...process.argv.slice(2)],
  { stdio: 'inherit', cwd: root },
);
process.exit(r.status ?? 1);
