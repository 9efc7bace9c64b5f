#!/usr/bin/env node
// `pnpm demo`: the project's main job — the mesh on one machine (examples/mesh-demo): a control plane, two
// ztunnels on 127.0.1.1 and 127.0.2.1, a client and two services, walked through allow / deny / metrics /
// live certificate renewal. `pnpm demo --keep` keeps it running.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const entry = resolve(root, 'examples/mesh-demo/src/main.ts');
const r = spawnSync(
  process.execPath,
  ['--conditions=@ambient-ts/source', '--import', 'tsx', entry, ...process.argv.slice(2)],
  { stdio: 'inherit', cwd: root },
);
process.exit(r.status ?? 1);
