#!/usr/bin/env node
// `pnpm demo`: the project's main job — the mesh on one machine (examples/mesh-demo): a control plane, two
// ztunnels on 127.0.1.1 and 127.0.2.1, a client and two services, walked through allow / deny / metrics /
// live certificate renewal. `pnpm demo --keep` keeps it running. `pnpm demo --netns` (root) shows transparent
// capture across hosts built from network namespaces instead.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const entry = resolve(root, 'examples/mesh-demo/src/main.ts');
// `pnpm demo -- --netns` passes the `--` through.
const args = process.argv.slice(2).filter((a) => a !== '--');
const child = spawn(process.execPath, ['--conditions=@ambient-ts/source', '--import', 'tsx', entry, ...args], {
  stdio: 'inherit',
  cwd: root,
});
// Ctrl-C in a terminal reaches the demo directly (same process group) and it tears down before exiting; a second
// Ctrl-C reaches it the same way and makes it kill everything and exit at once: wait for it. A SIGTERM or SIGHUP
// sent to this process alone is passed on, each time, so a second one also reaches the demo.
process.on('SIGINT', () => {});
for (const signal of ['SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
