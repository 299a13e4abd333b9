// airlock sync against real registries: build + unpack into registry A and
// sync into registry B from the same upstream, then compared (every
// repository, tag, manifest revision and blob link in the registries'
// storage, skopeo's view of every reference, the files, the emitted config,
// the receipts). Proxies in front of upstream and of B count what moves.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AIRLOCK, runAirlock, type CliResult } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { startFileServer } from './support/fileserver.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { ACCEPT_ALL_MANIFESTS, makeLayer } from './support/seed.js';
import { Agent, request } from 'undici';
import { skopeoOk } from './support/skopeo.js';
import { startUpstream, type Upstream } from './support/upstream.js';

interface SyncReport {
  items: Array<{ status: string; kind: string }>;
  upToDate: boolean;
  blobsPushed: number;
  blobsMounted: number;
  blobsPresent: number;
  bytesUploaded: number;
  filesWritten: number;
  fetched: { blobs: number; files: number; bytes: number };
  emitted: string[];
}

let up: Upstream;
let upProxy: TestFaultProxy;
let work: string;
let manifest: string;

before(async () => {
  up = await startUpstream();
  // Everything airlock fetches from upstream goes through this proxy, which counts it.
  upProxy = await startFaultProxy(up.registry.url);
  work = await makeTempDir('airlock-sync-');
  manifest = path.join(work, 'm.yaml');
  await writeFile(manifest, up.manifest({ registryHost: upProxy.host }));
});
after(async () => {
  await upProxy?.stop();
  await up?.stop();
});

/** Blob bodies fetched from upstream (GET /v2/…/blobs/sha256:…), by digest. */
const upstreamBlobGets = () => upProxy.stats.requests.filter((r) => r.method === 'GET' && /\/blobs\/sha256:/.test(r.path)).map((r) => /sha256:[a-f0-9]{64}/.exec(r.path)?.[0] ?? '');
/** Finished blob uploads at a target (the PUT that closes an upload session), as `repo@digest`. */
const finishedUploads = (p: TestFaultProxy) =>
  p.stats.requests
    .filter((r) => r.method === 'PUT' && r.path.includes('/blobs/uploads/') && r.status === 201)
    .map((r) => `${/^\/v2\/(.+)\/blobs\/uploads\//.exec(r.path)?.[1] ?? ''}@${/digest=(sha256(?::|%3A)[a-f0-9]{64})/.exec(r.path)?.[1]?.replace('%3A', ':') ?? ''}`);
const writes = (p: TestFaultProxy) => p.stats.requests.filter((r) => r.method !== 'GET' && r.method !== 'HEAD');

function syncArgs(target: string, files: string, cache: string, extra: string[] = []): string[] {
  return ['sync', manifest, '--registry', target, '--files-dir', files, '--cache', cache, '--json', ...extra];
}

function report(r: CliResult): SyncReport {
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as SyncReport;
}

/** Every link file below the registry's repositories/ (tags, manifest revisions, layer links), upload sessions left out. */
async function registryLinks(reg: TestRegistry): Promise<string[]> {
  const root = path.join(reg.dataDir, 'docker/registry/v2/repositories');
  const all = (await readdir(root, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => path.relative(root, path.join(e.parentPath, e.name)));
  const out: string[] = [];
  for (const rel of all.filter((r) => !r.split(path.sep).includes('_uploads')).sort()) out.push(`${rel} -> ${(await readFile(path.join(root, rel), 'utf8')).trim()}`);
  return out;
}

/** `host` and its port (network policies name the port alone) replaced, so two targets compare. */
function normalize(text: string, host: string): string {
  const port = host.split(':')[1] ?? '';
  return text.replaceAll(host, 'TARGET').replace(new RegExp(`(?<![0-9a-f])${port}(?![0-9a-f])`, 'g'), 'PORT');
}

/** Every file below `dir` (path → sha256), with `host` replaced so two targets compare. */
async function tree(dir: string, host: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of (await readdir(dir, { recursive: true, withFileTypes: true })).filter((x) => x.isFile())) {
    const rel = path.relative(dir, path.join(e.parentPath, e.name));
    const text = normalize((await readFile(path.join(dir, rel))).toString('latin1'), host);
    out.set(rel.replaceAll(host, 'TARGET'), createHash('sha256').update(text, 'latin1').digest('hex'));
  }
  return out;
}

describe('sync into a fresh registry gives what build + unpack give', () => {
  let regA: TestRegistry;
  let regB: TestRegistry;
  let proxyB: TestFaultProxy;
  let filesA: string;
  let filesB: string;
  let cacheB: string;
  let first: SyncReport;

  before(async () => {
    regA = await startRegistry();
    regB = await startRegistry();
    proxyB = await startFaultProxy(regB.url);
    filesA = path.join(work, 'files-a');
    filesB = path.join(work, 'files-b');
    await mkdir(filesA);
    await mkdir(filesB);
    cacheB = path.join(work, 'cache-b');
    assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
    const b = await runAirlock(['build', manifest, '-o', path.join(work, 'b.tar'), '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache-a')]);
    assert.equal(b.code, 0, b.stderr);
    const u = await runAirlock(['unpack', path.join(work, 'b.tar'), '--pub', path.join(work, 'k.pub'), '--registry', regA.host, '--files-dir', filesA, '--fileserver-url', 'http://fileserver.internal:8080', '--emit-config', path.join(work, 'cfg-a'), '--receipt', path.join(work, 'receipt-a.json')]);
    assert.equal(u.code, 0, u.stderr);
    upProxy.stats.reset();
    first = report(await runAirlock(syncArgs(proxyB.host, filesB, cacheB, ['--fileserver-url', 'http://fileserver.internal:8080', '--emit-config', path.join(work, 'cfg-b'), '--receipt', path.join(work, 'receipt-b.json')])));
  });
  after(async () => {
    await proxyB?.stop();
    await regA?.stop();
    await regB?.stop();
  });

  it('pushes every item and fetches each upstream blob once', () => {
    assert.equal(first.items.length, 10);
    assert.ok(first.items.every((i) => i.status === 'pushed'));
    assert.equal(first.upToDate, false);
    const gets = upstreamBlobGets();
    assert.equal(new Set(gets).size, gets.length, 'no blob was fetched twice');
    assert.equal(gets.length, first.fetched.blobs, 'the report counts what was fetched');
    assert.ok(first.blobsMounted >= 1, 'the layer shared across repositories was mounted, not uploaded twice');
    assert.ok(!gets.includes(''), 'every blob GET names a digest');
  });

  it('leaves registry B holding exactly what registry A holds: repositories, tags, manifest revisions, blob links', async () => {
    const a = await registryLinks(regA);
    assert.ok(a.length > 30, `${a.length} links in A`);
    assert.deepEqual(await registryLinks(regB), a);
  });

  it('serves every reference byte-identical to upstream and to A (skopeo)', async () => {
    for (const s of Object.values(up.refs)) {
      const ref = s.path;
      const fromA = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${regA.host}/${ref}`]);
      const fromB = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${regB.host}/${ref}`]);
      assert.ok(fromB.equals(s.pushed.manifest), `${ref}: B has upstream's bytes`);
      assert.ok(fromB.equals(fromA), `${ref}: A and B agree`);
    }
  });

  it('puts the same files (and falcoctl index, naming its own registry)', async () => {
    const a = await tree(filesA, regA.host);
    assert.ok(a.has('falco/index.yaml') && a.has('tools/tool.bin.sha256'));
    assert.deepEqual(await tree(filesB, proxyB.host), a);
  });

  it('emits the same config, the README saying sync', async () => {
    const a = await tree(path.join(work, 'cfg-a'), regA.host);
    const b = await tree(path.join(work, 'cfg-b'), proxyB.host);
    a.delete('README.md');
    b.delete('README.md');
    assert.deepEqual(b, a);
    const readme = (dir: string, host: string) =>
      readFile(path.join(work, dir, 'README.md'), 'utf8').then((t) =>
        normalize(t, host)
          .split('\n')
          .filter((l) => !/^# Configuration written by|^(Bundle|Manifest) `|Keep (it|what the bundle carries) fresh/.test(l)),
      );
    const readmeB = await readFile(path.join(work, 'cfg-b', 'README.md'), 'utf8');
    assert.match(readmeB, /^# Configuration written by airlock sync\n\nManifest `test-bundle` `1\.0`, synced /);
    assert.deepEqual(await readme('cfg-b', proxyB.host), await readme('cfg-a', regA.host));
  });

  it('writes a receipt naming the same images, blobs and files as unpack\'s', async () => {
    const load = async (f: string, host: string) => {
      const r = JSON.parse((await readFile(path.join(work, f), 'utf8')).replaceAll(host, 'TARGET')) as Record<string, unknown>;
      delete r.bundle;
      return r;
    };
    assert.deepEqual(await load('receipt-b.json', proxyB.host), await load('receipt-a.json', regA.host));
  });

  it('the receipt says it was synced, with no sha256 of an index nobody signed; build --base and diff take it', async () => {
    const text = await readFile(path.join(work, 'receipt-b.json'), 'utf8');
    const r = JSON.parse(text) as { bundle: Record<string, unknown> };
    assert.deepEqual(Object.keys(r.bundle).sort(), ['created', 'name', 'synced', 'version']);
    assert.equal(r.bundle.synced, true);
    assert.equal(r.bundle.name, 'test-bundle');
    const d = await runAirlock(['diff', path.join(work, 'receipt-a.json'), path.join(work, 'receipt-b.json'), '--json']);
    assert.equal(d.code, 0, d.stderr);
    const delta = await runAirlock(['build', manifest, '-o', path.join(work, 'delta.tar'), '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache-a'), '--base', path.join(work, 'receipt-b.json'), '--json']);
    assert.equal(delta.code, 0, delta.stderr);
    // A receipt whose bundle is neither (synced but not true, or both) is refused, naming the field.
    for (const bundle of [{ ...r.bundle, synced: 'yes' }, { ...r.bundle, sha256: 'a'.repeat(64) }]) {
      await writeFile(path.join(work, 'odd-receipt.json'), JSON.stringify({ ...r, bundle }));
      const odd = await runAirlock(['diff', path.join(work, 'receipt-a.json'), path.join(work, 'odd-receipt.json')]);
      assert.equal(odd.code, 1, odd.stderr);
      assert.match(odd.stderr, /odd-receipt\.json: bundle(\.synced is not true| has an unknown field "sha256")/);
    }
  });

  it('a second sync with nothing changed uploads nothing and fetches no blob, even with an empty cache', async () => {
    for (const cache of [cacheB, path.join(work, 'cache-empty')]) {
      upProxy.stats.reset();
      proxyB.stats.reset();
      const again = report(await runAirlock(syncArgs(proxyB.host, filesB, cache)));
      assert.equal(again.upToDate, true);
      assert.equal(again.bytesUploaded, 0);
      assert.equal(again.filesWritten, 0);
      assert.ok(again.items.every((i) => i.status === 'present'));
      assert.deepEqual(upstreamBlobGets(), [], `no blob fetched from upstream (${cache})`);
      assert.equal(again.fetched.blobs, 0);
      assert.deepEqual(writes(proxyB), [], 'nothing but HEAD/GET reached the target');
      if (cache === cacheB) assert.equal(again.fetched.bytes, 0, 'a warm cache: not a byte from upstream, files included');
      // An empty cache: the file with a declared sha256 is matched at the target unread; the one known by sha512 and the pinned driver are downloaded.
      else assert.equal(again.fetched.files, 2);
    }
  });

  it('after one upstream image changes, only its new blobs move', async () => {
    const layer = await makeLayer('docker-app-v2', 70_000);
    const shared = await makeLayer('shared-base', 300_000);
    const changed = await up.seeder.pushImage('team/docker-app', '2.0', { layers: [shared, layer], format: 'docker' });
    upProxy.stats.reset();
    proxyB.stats.reset();
    const r = report(await runAirlock(syncArgs(proxyB.host, filesB, cacheB)));
    const fresh = [changed.configDescriptor.digest, changed.layerDescriptors[1]!.digest].sort();
    assert.deepEqual(upstreamBlobGets().sort(), fresh, 'only the new config and layer came from upstream');
    assert.deepEqual(finishedUploads(proxyB).sort(), fresh.map((d) => `team/docker-app@${d}`).sort(), 'only they were uploaded');
    assert.equal(r.blobsPushed, 2);
    assert.deepEqual(r.items.filter((i) => i.status === 'pushed').map((i) => i.kind), ['image']);
    const bytes = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${regB.host}/team/docker-app:2.0`]);
    assert.ok(bytes.equals(changed.manifest));
  });
});

it('SIGKILL mid-sync, rerun: complete, and nothing uploaded twice', async () => {
  const reg = await startRegistry();
  const proxy = await startFaultProxy(reg.url);
  try {
    const files = await makeTempDir('airlock-sync-files-');
    const args = syncArgs(proxy.host, files, path.join(work, 'cache-kill'), ['--concurrency', '4']);
    // One blob upload hangs; the others go through; then the process is killed.
    proxy.addRule({ kind: 'delay', ms: 60_000, method: 'PUT', match: /\/blobs\/uploads\//, times: 1 });
    const child = spawn(process.execPath, [AIRLOCK, ...args], { stdio: 'ignore' });
    const deadline = Date.now() + 30_000;
    while (finishedUploads(proxy).length < 6) {
      if (Date.now() > deadline) throw new Error(`only ${finishedUploads(proxy).length} uploads finished`);
      await new Promise((r) => setTimeout(r, 25));
    }
    child.kill('SIGKILL');
    const [, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
    assert.equal(signal, 'SIGKILL');
    const before = new Set(finishedUploads(proxy));
    proxy.clearRules();
    proxy.stats.reset();

    const second = report(await runAirlock(args));
    const again = finishedUploads(proxy);
    assert.ok(again.length > 0, 'the kill came mid-sync: the rerun had uploads left to do');
    assert.deepEqual(again.filter((u) => before.has(u)), [], 'no blob finished before the kill was uploaded again to the same repository');
    assert.ok(second.blobsPresent >= before.size, `${second.blobsPresent} blobs found present (${before.size} finished before the kill)`);
    for (const s of Object.values(up.refs)) {
      const bytes = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/${s.path}`]);
      const upstream = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${up.registry.host}/${s.path}`]);
      assert.ok(bytes.equals(upstream), `${s.path} complete after the rerun`);
    }

    proxy.stats.reset();
    const third = report(await runAirlock(args));
    assert.equal(third.upToDate, true);
    assert.deepEqual(writes(proxy), []);
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});

it('a damaged cache file (a layer, a file) is removed and fetched anew, not pushed and not failed on', async () => {
  const cache = path.join(work, 'cache-damaged');
  const first = await startRegistry();
  const second = await startRegistry();
  try {
    report(await runAirlock(syncArgs(first.host, await makeTempDir('airlock-sync-damaged-'), cache)));
    // The largest blob and the file whose manifest gives its sha256, one byte flipped in place each.
    const blobs = path.join(cache, 'blobs', 'sha256');
    const sizes = await Promise.all((await readdir(blobs)).map(async (n) => ({ n, size: (await readFile(path.join(blobs, n))).length })));
    const layer = sizes.sort((a, b) => b.size - a.size)[0]!.n;
    for (const name of [layer, up.tool.sha256]) {
      const bytes = await readFile(path.join(blobs, name));
      bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
      await writeFile(path.join(blobs, name), bytes);
    }

    upProxy.stats.reset();
    const files = await makeTempDir('airlock-sync-damaged-');
    const r = report(await runAirlock(syncArgs(second.host, files, cache)));
    assert.ok(r.items.every((i) => i.status === 'pushed'));
    assert.deepEqual(upstreamBlobGets(), [`sha256:${layer}`], 'the damaged layer, and only it, came from upstream again');
    for (const name of [layer, up.tool.sha256]) assert.equal(createHash('sha256').update(await readFile(path.join(blobs, name))).digest('hex'), name, 'the cache holds the right bytes again');
    assert.ok((await readFile(path.join(files, up.tool.landing))).equals(up.tool.bytes));
    for (const s of Object.values(up.refs)) {
      const bytes = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${second.host}/${s.path}`]);
      const upstream = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${up.registry.host}/${s.path}`]);
      assert.ok(bytes.equals(upstream), s.path);
    }
  } finally {
    await first.stop();
    await second.stop();
  }
});

it('usage and manifest errors exit 2 before anything is fetched; an item that cannot be resolved is exit 1 with nothing pushed', async () => {
  const files = await makeTempDir('airlock-sync-usage-');
  const noRegistry = await runAirlock(['sync', manifest, '--files-dir', files]);
  assert.equal(noRegistry.code, 2);
  assert.match(noRegistry.stderr, /give the private registry with --registry/);
  const both = await runAirlock(['sync', manifest, '--registry', '127.0.0.1:1', '--files-dir', files, '--files-url', 'http://127.0.0.1:1/']);
  assert.equal(both.code, 2);
  assert.match(both.stderr, /exactly one of --files-dir DIR and --files-url URL/);
  assert.equal((await runAirlock(['sync', manifest, '--registry', '127.0.0.1:1', '--files-dir', files, '--auth-host', 'x'])).code, 2, "build's --auth-host is no sync option");

  const bad = path.join(work, 'bad.yaml');
  await writeFile(bad, 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: Bad_Name\nspec: {}\n');
  upProxy.stats.reset();
  const r = await runAirlock(['sync', bad, '--registry', '127.0.0.1:1', '--files-dir', files]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bad\.yaml:4:\d+: metadata\.name/);

  const reg = await startRegistry();
  const proxy = await startFaultProxy(reg.url);
  try {
    const missing = path.join(work, 'missing.yaml');
    await writeFile(missing, up.manifest({ registryHost: upProxy.host, extra: '' }).replace(`${upProxy.host}/pause:3.9`, `${upProxy.host}/pause:no-such-tag`));
    const m = await runAirlock(['sync', missing, '--registry', proxy.host, '--files-dir', files, '--cache', path.join(work, 'cache-missing')]);
    assert.equal(m.code, 1, m.stderr);
    assert.match(m.stderr, /1 of 10 items failed; nothing was pushed:\n {2}image .*pause:no-such-tag: .*not found/);
    assert.deepEqual(writes(proxy), [], 'nothing was pushed');
  } finally {
    await proxy.stop();
    await reg.stop();
  }
});

it('upstream credentials from docker config.json, the target\'s from --username/--password-stdin, each only to its host; files PUT to WebDAV', async () => {
  const locked = await startUpstream({ registry: { basicAuth: { username: 'reader', password: 'upstream pass' } } });
  const target = await startRegistry({ basicAuth: { username: 'pusher', password: 'target pass' } });
  const web = await startFileServer();
  try {
    const dir = await makeTempDir('airlock-sync-auth-');
    const m = path.join(dir, 'm.yaml');
    await writeFile(m, locked.manifest({ specExtra: `  registries:\n    "${locked.registry.host}": { caFile: "${locked.registry.caFile}" }\n` }));
    const docker = path.join(dir, 'docker');
    await mkdir(docker);
    await writeFile(path.join(docker, 'config.json'), JSON.stringify({ auths: { [locked.registry.host]: { auth: Buffer.from('reader:upstream pass').toString('base64') } } }));
    const args = ['sync', m, '--registry', `${target.host}/welkin`, '--ca-file', target.caFile ?? '', '--username', 'pusher', '--password-stdin', '--files-url', `${web.url}/airgap`, '--cache', path.join(dir, 'c'), '--json'];
    const env = { ...process.env, DOCKER_CONFIG: docker };
    const r = report(await runAirlock(args, 'target pass\n', { env }));
    assert.ok(r.items.every((i) => i.status === 'pushed'));
    const agent = new Agent({ connect: { ca: await readFile(target.caFile ?? '') } });
    try {
      const res = await request(`${target.url}/v2/welkin/team/app/manifests/1.0`, { headers: { accept: ACCEPT_ALL_MANIFESTS, authorization: `Basic ${Buffer.from('pusher:target pass').toString('base64')}` }, dispatcher: agent });
      assert.equal(res.statusCode, 200);
      assert.ok(Buffer.from(await res.body.arrayBuffer()).equals(locked.refs.ociIndex.pushed.manifest));
    } finally {
      await agent.close();
    }
    for (const f of [locked.opensearch, locked.driver, locked.tool]) {
      assert.equal(createHash('sha256').update(await readFile(path.join(web.root, 'airgap', f.landing))).digest('hex'), f.sha256, `${f.landing} on the WebDAV server`);
    }

    // The target's password is not one upstream takes (and the other way round): each went only to its own host.
    const noDocker = await runAirlock(args, 'target pass\n', { env: { ...process.env, DOCKER_CONFIG: path.join(dir, 'none') } });
    assert.equal(noDocker.code, 1);
    assert.match(noDocker.stderr, /asks for a user name and password/);
    const again = report(await runAirlock(args, 'target pass\n', { env }));
    assert.equal(again.upToDate, true);
  } finally {
    await web.stop();
    await target.stop();
    await locked.stop();
  }
});
