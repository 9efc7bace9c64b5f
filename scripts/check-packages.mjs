#!/usr/bin/env node
// Packaging check for every publishable package: build (tsup), publint, attw --pack, then `pnpm pack`
// all of them and install the tarballs into an empty npm project, and load each one through both
// `import` and `require`, checking both expose the same named exports.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

const root = resolve(import.meta.dirname, '..');
const only = process.argv.slice(2);
const all = readdirSync(join(root, 'packages'))
  .map((dir) => ({ dir: join(root, 'packages', dir), json: readJson(join(root, 'packages', dir, 'package.json')) }))
  .filter((p) => p.json && !p.json.private);
// Named packages bring their workspace dependencies along: their tarballs must be installed together.
const wanted = new Set(only.length ? only : all.map((p) => p.json.name));
for (let grew = true; grew; ) {
  grew = false;
  for (const p of all) {
    if (!wanted.has(p.json.name)) continue;
    for (const [dep, range] of Object.entries(p.json.dependencies ?? {})) {
      if (String(range).startsWith('workspace:') && !wanted.has(dep)) {
        wanted.add(dep);
        grew = true;
      }
    }
  }
}
const pkgs = all.filter((p) => wanted.has(p.json.name));

const bin = (name) => join(root, 'node_modules', '.bin', name);
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: 'inherit' });
const problems = [];

for (const p of pkgs) {
  console.log(`\n--- ${p.json.name}`);
  try {
    run(bin('tsup'), ['--silent'], p.dir);
    run(bin('publint'), ['--strict', '--pack', 'npm'], p.dir);
    run(bin('attw'), ['--pack', '.', '--format', 'table-flipped', '--quiet'], p.dir);
  } catch {
    problems.push(`${p.json.name}: build/publint/attw failed (see above)`);
  }
}

const work = mkdtempSync(join(tmpdir(), 'ambient-pack-'));
try {
  const tarballs = [];
  for (const p of pkgs) {
    // pnpm pack rewrites workspace:^ ranges into real versions, as publishing does.
    const out = execFileSync('npx', ['-y', 'pnpm@10.34.8', 'pack', '--pack-destination', work], {
      cwd: p.dir,
      encoding: 'utf8',
    });
    tarballs.push(out.trim().split('\n').pop().trim());
  }
  const app = join(work, 'app');
  execFileSync('mkdir', ['-p', app]);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...tarballs], app);
  for (const p of pkgs) {
    const name = p.json.name;
    const script = `
      const cjs = require(${JSON.stringify(name)});
      import(${JSON.stringify(name)}).then((esm) => {
        const a = Object.keys(cjs).filter((k) => k !== 'default').sort().join(',');
        const b = Object.keys(esm).filter((k) => k !== 'default').sort().join(',');
        if (!a) throw new Error('no exports through require');
        if (a !== b) throw new Error('require and import export different names:\\n' + a + '\\n' + b);
        console.log(${JSON.stringify(name)} + ': ' + a.split(',').length + ' exports via import and require');
      }).catch((e) => { console.error(e); process.exit(1); });`;
    try {
      run('node', ['-e', script], app);
    } catch {
      problems.push(`${name}: does not load from its tarball`);
    }
    for (const binName of Object.keys(p.json.bin ?? {})) {
      try {
        run(join(app, 'node_modules', '.bin', binName), ['--help'], app);
      } catch {
        problems.push(`${name}: bin ${binName} --help failed from the installed tarball`);
      }
    }
  }
} catch (err) {
  problems.push(`pack/install into an empty project failed: ${err.message}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}

if (problems.length) {
  console.error(`\npackaging problems:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log(`\npackaging ok: ${pkgs.map((p) => p.json.name).join(', ')}`);

function readJson(file) {
  try {
    return JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    return undefined;
  }
}
