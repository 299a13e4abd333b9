// SIGKILL in the middle of an unpack, then again: the end state is complete
// and the same, and a further unpack uploads nothing.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createHash } from 'node:crypto';
import { Agent, request } from 'undici';
import { AIRLOCK, runAirlock } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { ACCEPT_ALL_MANIFESTS } from './support/seed.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let up: Upstream;
let target: TestRegistry;
let proxy: TestFaultProxy;

before(async () => {
  up = await startUpstream();
  target = await startRegistry();
  proxy = await startFaultProxy(target.url);
});
after(async () => {
  await proxy?.stop();
  await target?.stop();
  await up?.stop();
});

const uploads = () => proxy.stats.requests.filter((r) => r.method === 'POST' && /\/blobs\/uploads\/$/.test(r.path.split('?')[0] ?? ''));
const finishedPuts = () => proxy.stats.requests.filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && r.status === 201);

it('SIGKILL mid-unpack, rerun: complete and identical; then nothing is uploaded again', async () => {
  const dir = await makeTempDir('airlock-unpack-kill-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
  await writeFile(path.join(dir, 'm.yaml'), up.manifest());
  const bundle = path.join(dir, 'b.tar');
  assert.equal((await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', bundle, '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, 'c')])).code, 0);
  const files = await makeTempDir('airlock-files-');
  const args = ['unpack', bundle, '--pub', path.join(dir, 'k.pub'), '--registry', proxy.host, '--files-dir', files, '--concurrency', '4', '--json'];

  // One blob upload hangs; the others go through; then the process is killed.
  proxy.addRule({ kind: 'delay', ms: 60_000, method: 'PUT', match: /\/blobs\/uploads\//, times: 1 });
  const child = spawn(process.execPath, [AIRLOCK, ...args], { stdio: 'ignore' });
  const deadline = Date.now() + 20_000;
  while (finishedPuts().length < 8) {
    if (Date.now() > deadline) throw new Error(`only ${finishedPuts().length} uploads finished`);
    await new Promise((r) => setTimeout(r, 25));
  }
  child.kill('SIGKILL');
  const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  assert.equal(signal, 'SIGKILL');
  const doneBefore = finishedPuts().length;
  proxy.clearRules();
  proxy.stats.reset();

  const second = await runAirlock(args);
  assert.equal(second.code, 0, second.stderr);
  const report = JSON.parse(second.stdout) as { blobsPushed: number; blobsPresent: number; items: Array<{ status: string }> };
  assert.ok(report.blobsPresent >= doneBefore - 1, `${report.blobsPresent} blobs were found present (${doneBefore} finished before the kill)`);
  assert.ok(uploads().length < 20, `the rerun started ${uploads().length} uploads, fewer than all`);

  // Complete: every reference resolves to the upstream digest, every file is right.
  const agent = new Agent();
  try {
    for (const s of Object.values(up.refs)) {
      const [repo, ref] = s.path.includes('@') ? (s.path.split('@') as [string, string]) : (s.path.split(':') as [string, string]);
      const res = await request(`${target.url}/v2/${repo}/manifests/${ref}`, { headers: { accept: ACCEPT_ALL_MANIFESTS }, dispatcher: agent });
      const body = Buffer.from(await res.body.arrayBuffer());
      assert.equal(res.statusCode, 200, s.path);
      assert.ok(body.equals(s.pushed.manifest), `${s.path} bytes`);
    }
  } finally {
    await agent.close();
  }
  for (const f of [up.opensearch, up.driver, up.tool]) {
    assert.equal(createHash('sha256').update(await readFile(path.join(files, f.landing))).digest('hex'), f.sha256);
  }

  proxy.stats.reset();
  const third = await runAirlock(args);
  assert.equal(third.code, 0, third.stderr);
  assert.equal((JSON.parse(third.stdout) as { bytesUploaded: number }).bytesUploaded, 0);
  assert.equal(uploads().length, 0, 'no upload was even started');
  assert.equal(proxy.stats.requests.filter((r) => r.method !== 'HEAD' && r.method !== 'GET').length, 0, 'nothing but HEAD/GET reached the registry');
});

it('pushes through 429 and 503 answers, and in PATCH chunks when AIRLOCK_CHUNK_SIZE is small', async () => {
  const fresh = await startRegistry();
  const p = await startFaultProxy(fresh.url);
  try {
    const dir = await makeTempDir('airlock-unpack-faults-');
    assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
    await writeFile(path.join(dir, 'm.yaml'), up.manifest());
    const bundle = path.join(dir, 'b.tar');
    assert.equal((await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', bundle, '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, 'c')])).code, 0);
    p.addRule({ kind: 'status', status: 429, retryAfter: 1, method: 'POST', match: /\/blobs\/uploads\/$/, times: 2 });
    p.addRule({ kind: 'status', status: 503, method: 'PUT', match: /\/manifests\//, times: 2 });
    p.addRule({ kind: 'status', status: 503, method: 'PATCH', match: /\/blobs\/uploads\//, times: 1 });
    const r = await runAirlock(['unpack', bundle, '--pub', path.join(dir, 'k.pub'), '--registry', p.host, '--files-dir', await makeTempDir('airlock-files-')], undefined, {
      env: { ...process.env, AIRLOCK_CHUNK_SIZE: '100000' },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(p.pendingRules, 0, 'every fault was hit');
    const patches = p.stats.requests.filter((q) => q.method === 'PATCH' && q.status === 202);
    assert.ok(patches.length >= 4, `${patches.length} PATCH chunks (the 300 kB layer in 100 kB pieces)`);
    const agent = new Agent();
    try {
      const res = await request(`${fresh.url}/v2/team/app/blobs/${up.sharedLayer}`, { dispatcher: agent });
      const body = Buffer.from(await res.body.arrayBuffer());
      assert.equal(`sha256:${createHash('sha256').update(body).digest('hex')}`, up.sharedLayer);
      const m = await request(`${fresh.url}/v2/team/app/manifests/1.0`, { method: 'HEAD', headers: { accept: ACCEPT_ALL_MANIFESTS }, dispatcher: agent });
      await m.body.dump();
      assert.equal(m.headers['docker-content-digest'], up.refs.ociIndex.pushed.digest);
    } finally {
      await agent.close();
    }
  } finally {
    await p.stop();
    await fresh.stop();
  }
});
