import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ConfigBatch } from '../src/config-source.js';
import { DirectorySource } from '../src/directory-source.js';
import { ManualScheduler, settle, tempDir, yaml } from './helpers.js';

const pod = (name: string, ip: string, extra = '') =>
  yaml(`
apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  namespace: default
  labels: {app: ${name}${extra}}
spec:
  nodeName: node-1
status:
  podIP: ${ip}
`);

describe('DirectorySource', () => {
  let dir: string;
  let cleanup: () => void;
  let source: DirectorySource;
  let scheduler: ManualScheduler;
  let batches: ConfigBatch[];

  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    scheduler = new ManualScheduler();
    batches = [];
  });
  afterEach(async () => {
    await source?.close();
    cleanup();
  });

  async function open(): Promise<void> {
    source = new DirectorySource({ dir, scheduler });
    await source.start();
    source.watch((b) => batches.push(b));
  }
  const names = () =>
    source
      .list()
      .map((o) => `${o.kind}/${o.metadata.name}`)
      .sort();

  it('reads every YAML file below the directory, many objects per file', async () => {
    writeFileSync(join(dir, 'a.yaml'), `${pod('a', '10.0.0.1')}---\n${pod('b', '10.0.0.2')}\n---\n`);
    mkdirSync(join(dir, 'sub'));
    writeFileSync(join(dir, 'sub', 'c.yml'), pod('c', '10.0.0.3'));
    writeFileSync(join(dir, 'notes.txt'), 'not config');
    writeFileSync(join(dir, '.hidden.yaml'), pod('h', '10.0.0.9'));
    await open();
    expect(names()).toEqual(['Pod/a', 'Pod/b', 'Pod/c']);
    expect(source.problems()).toEqual([]);
    const c = source.list().find((o) => o.metadata.name === 'c');
    expect(c?.origin).toMatchObject({ file: 'sub/c.yml', document: 0, line: 1 });
  });

  it('flattens a v1 List', async () => {
    writeFileSync(
      join(dir, 'list.yaml'),
      yaml(`
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: one}}
- {apiVersion: v1, kind: Namespace, metadata: {name: two}}
`),
    );
    await open();
    expect(names()).toEqual(['Namespace/one', 'Namespace/two']);
  });

  it('sees files added, modified, deleted and renamed, as net changes', async () => {
    writeFileSync(join(dir, 'a.yaml'), pod('a', '10.0.0.1'));
    await open();

    writeFileSync(join(dir, 'b.yaml'), pod('b', '10.0.0.2'));
    await settle(scheduler, source, () => batches.length >= 1, dir);
    expect(batches[0]?.changes.map((c) => `${c.type} ${c.key}`)).toEqual(['added Pod/default/b']);

    writeFileSync(join(dir, 'b.yaml'), pod('b', '10.0.0.22'));
    await settle(scheduler, source, () => batches.length >= 2, dir);
    expect(batches[1]?.changes.map((c) => `${c.type} ${c.key}`)).toEqual(['modified Pod/default/b']);
    expect(batches[1]?.changes[0]?.object.spec).toMatchObject({ podIPs: ['10.0.0.22'] });

    // Rename: same objects under another name -> no change reaches the translation.
    renameSync(join(dir, 'b.yaml'), join(dir, 'c.yaml'));
    writeFileSync(join(dir, 'a.yaml'), pod('a', '10.0.0.11'));
    await settle(scheduler, source, () => batches.length >= 3, dir);
    expect(batches[2]?.changes.map((c) => `${c.type} ${c.key}`)).toEqual(['modified Pod/default/a']);
    expect(source.list().find((o) => o.metadata.name === 'b')?.origin.file).toBe('c.yaml');

    rmSync(join(dir, 'c.yaml'));
    await settle(scheduler, source, () => batches.length >= 4, dir);
    expect(batches[3]?.changes.map((c) => `${c.type} ${c.key}`)).toEqual(['deleted Pod/default/b']);
    expect(names()).toEqual(['Pod/a']);
  });

  it('handles directories appearing and disappearing', async () => {
    await open();
    mkdirSync(join(dir, 'team'));
    writeFileSync(join(dir, 'team', 'x.yaml'), pod('x', '10.0.0.5'));
    await settle(scheduler, source, () => names().includes('Pod/x'), dir);
    rmSync(join(dir, 'team'), { recursive: true });
    await settle(scheduler, source, () => !names().includes('Pod/x'), dir);
    expect(names()).toEqual([]);
  });

  it('never applies a half-written file: a parse error keeps the last good version', async () => {
    writeFileSync(join(dir, 'a.yaml'), `${pod('a', '10.0.0.1')}---\n${pod('b', '10.0.0.2')}`);
    await open();
    // An editor's first step: the file truncated mid-object (unbalanced flow mapping).
    writeFileSync(
      join(dir, 'a.yaml'),
      `${pod('a', '10.0.0.1')}---\napiVersion: v1\nkind: Pod\nmetadata: {name: b, labels: {app: b`,
    );
    await settle(scheduler, source, () => batches.length >= 1, dir);
    expect(batches[0]?.changes).toEqual([]);
    expect(batches[0]?.problems).toEqual([
      expect.objectContaining({ code: 'yaml-syntax', file: 'a.yaml', severity: 'error' }),
    ]);
    expect(names()).toEqual(['Pod/a', 'Pod/b']);
    // Second step completes the file: the error clears and the new content applies.
    writeFileSync(join(dir, 'a.yaml'), `${pod('a', '10.0.0.1')}---\n${pod('b', '10.0.0.3')}`);
    await settle(scheduler, source, () => batches.length >= 2, dir);
    expect(batches[1]?.problems).toEqual([]);
    expect(batches[1]?.changes.map((c) => `${c.type} ${c.key}`)).toEqual(['modified Pod/default/b']);
  });

  it('debounces: two quick writes are read once, so the intermediate state is never seen', async () => {
    writeFileSync(join(dir, 'a.yaml'), pod('a', '10.0.0.1'));
    await open();
    writeFileSync(join(dir, 'a.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {app: [');
    writeFileSync(join(dir, 'a.yaml'), pod('a', '10.0.0.7'));
    await settle(scheduler, source, () => batches.length >= 1, dir);
    expect(batches.every((b) => b.problems.length === 0)).toBe(true);
    expect(batches[0]?.changes[0]?.object.spec).toMatchObject({ podIPs: ['10.0.0.7'] });
  });

  it('keeps the last good version of a rejected object and leaves the rest of the file alone', async () => {
    writeFileSync(join(dir, 'a.yaml'), `${pod('a', '10.0.0.1')}---\n${pod('b', '10.0.0.2')}`);
    await open();
    // b loses its IP (rejected), a changes (accepted).
    writeFileSync(
      join(dir, 'a.yaml'),
      `${pod('a', '10.0.0.11')}---\napiVersion: v1\nkind: Pod\nmetadata: {name: b}\nspec: {}\n`,
    );
    await settle(scheduler, source, () => batches.length >= 1, dir);
    expect(batches[0]?.changes.map((c) => `${c.type} ${c.key}`)).toEqual(['modified Pod/default/a']);
    expect(batches[0]?.problems).toEqual([
      expect.objectContaining({ code: 'pod-without-ip', object: 'Pod default/b', file: 'a.yaml', line: 12 }),
    ]);
    expect(source.list().find((o) => o.metadata.name === 'b')?.spec).toMatchObject({ podIPs: ['10.0.0.2'] });
  });

  it('reports duplicates; the first definition wins until it goes away', async () => {
    writeFileSync(join(dir, 'a.yaml'), pod('x', '10.0.0.1'));
    writeFileSync(join(dir, 'b.yaml'), pod('x', '10.0.0.2'));
    await open();
    expect(source.problems()).toEqual([
      expect.objectContaining({
        code: 'duplicate',
        file: 'b.yaml',
        object: 'Pod default/x',
        reason: expect.stringContaining('a.yaml'),
      }),
    ]);
    expect(source.list()[0]?.spec).toMatchObject({ podIPs: ['10.0.0.1'] });
    rmSync(join(dir, 'a.yaml'));
    await settle(scheduler, source, () => batches.length >= 1, dir);
    expect(batches[0]?.changes.map((c) => `${c.type} ${c.key}`)).toEqual(['modified Pod/default/x']);
    expect(batches[0]?.problems).toEqual([]);
    expect(source.list()[0]?.spec).toMatchObject({ podIPs: ['10.0.0.2'] });
  });

  it('reports a duplicate inside one file', async () => {
    writeFileSync(join(dir, 'a.yaml'), `${pod('x', '10.0.0.1')}---\n${pod('x', '10.0.0.2')}`);
    await open();
    expect(source.problems()).toEqual([expect.objectContaining({ code: 'duplicate', file: 'a.yaml', line: 12 })]);
    expect(source.list()).toHaveLength(1);
  });

  it('reports schema errors and unknown kinds with file, object and reason', async () => {
    writeFileSync(
      join(dir, 'bad.yaml'),
      yaml(`
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  ports: [{port: 99999}]
---
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: vs}
---
apiVersion: v1
kind: Pod
metadata: {name: p, labels: {version: 2}}
status: {podIP: 10.0.0.1}
---
just a string
`),
    );
    await open();
    expect(source.list()).toEqual([]);
    expect(source.problems()).toEqual([
      expect.objectContaining({
        code: 'schema',
        object: 'Service default/web',
        reason: expect.stringContaining('spec.ports[0].port'),
      }),
      expect.objectContaining({ code: 'unknown-kind', severity: 'warning', object: 'VirtualService vs' }),
      expect.objectContaining({ code: 'schema', object: 'Pod default/p', reason: expect.stringContaining('quote it') }),
      expect.objectContaining({ code: 'schema', line: 16 }),
    ]);
  });

  it('reports a policy that fails the injected validation, keeping the last good one', async () => {
    const policy = (action: string) =>
      `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: p, namespace: ns}\nspec: {action: ${action}}\n`;
    writeFileSync(join(dir, 'p.yaml'), policy('DENY'));
    source = new DirectorySource({
      dir,
      scheduler,
      validatePolicy: (p) =>
        (p.spec as { action?: string }).action === 'BOGUS' ? ['spec.action: unknown action BOGUS'] : [],
    });
    await source.start();
    source.watch((b) => batches.push(b));
    writeFileSync(join(dir, 'p.yaml'), policy('BOGUS'));
    await settle(scheduler, source, () => batches.length >= 1, dir);
    expect(batches[0]?.problems).toEqual([
      expect.objectContaining({ code: 'policy-invalid', object: 'AuthorizationPolicy ns/p' }),
    ]);
    expect(source.list()[0]?.raw).toMatchObject({ spec: { action: 'DENY' } });
  });

  it('fails to start on a missing directory with a clear error', async () => {
    source = new DirectorySource({ dir: join(dir, 'nope'), scheduler });
    await expect(source.start()).rejects.toMatchObject({ code: 'ERR_CP_CONFIG_DIR' });
  });
});
