// airlock build against a real registry and nginx, checked with skopeo, openssl and sha256sum.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock, type CliResult } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { makeTempDir } from './support/proc.js';
import { skopeoOk } from './support/skopeo.js';
import { entry, readTar } from './support/tarball.js';
import { run, runOk } from './support/tools.js';
import { startRegistry } from './support/registry.js';
import { parse as parseYaml } from 'yaml';
import { startUpstream, TRIVY_DB_LAYER, type Upstream } from './support/upstream.js';

let up: Upstream;
let work: string;
let key: string;
let pub: string;

before(async () => {
  up = await startUpstream();
  work = await makeTempDir('airlock-build-');
  const k = await runAirlock(['keygen', '--out', path.join(work, 'signer')]);
  assert.equal(k.code, 0, k.stderr);
  key = path.join(work, 'signer.key');
  pub = path.join(work, 'signer.pub');
});

after(async () => {
  await up?.stop();
});

let n = 0;
async function buildWith(manifestText: string, args: string[] = [], env: NodeJS.ProcessEnv = {}, stdin?: string): Promise<{ r: CliResult; bundle: string; cache: string; dir: string }> {
  const dir = await makeTempDir(`airlock-b${n++}-`);
  const manifest = path.join(dir, 'airlock.yaml');
  await writeFile(manifest, manifestText);
  const bundle = path.join(dir, 'bundle.tar');
  const cache = args.includes('--cache') ? (args[args.indexOf('--cache') + 1] ?? '') : path.join(dir, 'cache');
  const extra = args.includes('--cache') ? args : [...args, '--cache', cache];
  const r = await runAirlock(['build', manifest, '-o', bundle, '--key', key, ...extra], stdin, { env: { ...process.env, ...env } });
  return { r, bundle, cache, dir };
}

function ref(p: string, host = up.registry.host): string {
  return `${host}/${p}`;
}

describe('a full build', () => {
  let bundle: string;
  let result: CliResult;

  before(async () => {
    const b = await buildWith(up.manifest());
    result = b.r;
    bundle = b.bundle;
  });

  it('exits 0 and writes the bundle and a sha256sum -c sidecar', async () => {
    assert.equal(result.code, 0, result.stderr);
    assert.ok(existsSync(bundle));
    const sidecar = await readFile(`${bundle}.sha256`, 'utf8');
    assert.match(sidecar, /^[a-f0-9]{64} {2}bundle\.tar\n$/);
    const check = await run('sha256sum', ['-c', 'bundle.tar.sha256'], { cwd: path.dirname(bundle) });
    assert.equal(check.code, 0, check.stderr + check.stdout.toString());
    // No temp files left beside it.
    assert.deepEqual(readdirSync(path.dirname(bundle)).filter((f) => f.includes('partial')), []);
  });

  it('is signed so that openssl accepts the signature over bundle.json', async () => {
    const entries = await readTar(bundle);
    const dir = await makeTempDir('airlock-sig-');
    await writeFile(path.join(dir, 'bundle.json'), entry(entries, 'bundle.json').data);
    await writeFile(path.join(dir, 'sig.der'), Buffer.from(entry(entries, 'bundle.json.sig').data.toString('utf8'), 'base64'));
    const ok = await run('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', path.join(dir, 'sig.der'), path.join(dir, 'bundle.json')]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout.toString(), /Verified OK/);
    // And rejects it for other bytes.
    await writeFile(path.join(dir, 'bundle.json'), Buffer.concat([entry(entries, 'bundle.json').data, Buffer.from(' ')]));
    const bad = await run('openssl', ['dgst', '-sha256', '-verify', pub, '-signature', path.join(dir, 'sig.der'), path.join(dir, 'bundle.json')]);
    assert.notEqual(bad.code, 0);
  });

  it('lays entries out in SPEC §4 order, every blob once, names and sizes as bundle.json says', async () => {
    const entries = await readTar(bundle);
    const names = entries.map((e) => e.name);
    assert.deepEqual(names.slice(0, 4), ['bundle.json', 'bundle.json.sig', 'oci-layout', 'index.json']);
    const blobNames = names.filter((x) => x.startsWith('blobs/sha256/'));
    const fileNames = names.filter((x) => x.startsWith('files/'));
    assert.equal(names.length, 4 + blobNames.length + fileNames.length, 'no other entries');
    assert.ok(names.indexOf(fileNames[0] ?? '') > names.indexOf(blobNames.at(-1) ?? ''), 'files after blobs');
    assert.equal(new Set(blobNames).size, blobNames.length, 'each blob once');
    assert.equal(blobNames.filter((x) => x === `blobs/sha256/${up.sharedLayer.slice(7)}`).length, 1, 'the shared layer is one entry');
    for (const e of entries) assert.equal(e.type, 'file', `${e.name} is a regular file`);

    const bj = JSON.parse(entry(entries, 'bundle.json').data.toString('utf8')) as BundleJson;
    assert.deepEqual(bj.blobs.map((b) => `blobs/sha256/${b.digest.slice(7)}`), blobNames);
    for (const b of bj.blobs) {
      const e = entry(entries, `blobs/sha256/${b.digest.slice(7)}`);
      assert.equal(e.size, b.size);
      assert.equal(`sha256:${createHash('sha256').update(e.data).digest('hex')}`, b.digest);
    }
    for (const [name, d] of Object.entries(bj.layout)) {
      assert.equal(createHash('sha256').update(entry(entries, name).data).digest('hex'), d.sha256, name);
    }
    assert.deepEqual(JSON.parse(entry(entries, 'oci-layout').data.toString('utf8')), { imageLayoutVersion: '1.0.0' });
  });

  it('records every image and artifact with its upstream digest, kind and role', async () => {
    const bj = await bundleJson(bundle);
    const byRef = new Map(bj.images.map((i) => [i.ref, i]));
    const expect: Array<[keyof Upstream['refs'], string, string | undefined]> = [
      ['ociIndex', 'image', undefined],
      ['docker', 'image', undefined],
      ['dockerList', 'image', undefined],
      ['pause', 'image', undefined],
      ['digestOnly', 'image', undefined],
      ['trivyDb', 'artifact', 'trivy-db'],
      ['falcoRules', 'artifact', 'falco-rules'],
    ];
    for (const [k, kind, role] of expect) {
      const s = up.refs[k];
      const img = byRef.get(ref(s.path));
      assert.ok(img, `bundle.json has ${s.path}`);
      assert.equal(img.digest, s.pushed.digest, `${s.path} keeps the upstream digest`);
      assert.equal(img.mediaType, s.pushed.mediaType);
      assert.equal(img.kind, kind);
      assert.equal(img.role, role);
    }
    assert.deepEqual(byRef.get(ref(up.refs.ociIndex.path))?.platforms, ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(bj.images.length, 7);
    assert.equal(bj.name, 'test-bundle');
    assert.equal(bj.version, '1.0');
    assert.match(bj.tool, /^airlock \d/);
  });

  it('holds the exact upstream manifest bytes: skopeo reads the OCI-typed ones from the archive', async () => {
    for (const k of ['ociIndex', 'trivyDb', 'falcoRules', 'digestOnly'] as const) {
      const s = up.refs[k];
      const raw = await skopeoOk(['inspect', '--raw', `oci-archive:${bundle}:${ref(s.path)}`]);
      assert.ok(raw.equals(s.pushed.manifest), `${s.path}: skopeo returns the pushed bytes`);
    }
    // skopeo 1.9 does not read Docker-typed manifests from an OCI layout (SPEC §4); read the blobs ourselves.
    const entries = await readTar(bundle);
    for (const k of ['docker', 'dockerList', 'pause'] as const) {
      const s = up.refs[k];
      assert.ok(entry(entries, `blobs/sha256/${s.pushed.digest.slice(7)}`).data.equals(s.pushed.manifest), `${s.path} bytes`);
    }
    for (const child of up.refs.dockerList.children ?? []) {
      assert.ok(entry(entries, `blobs/sha256/${child.digest.slice(7)}`).data.equals(child.manifest));
    }
  });

  it('skopeo copies the whole index out of the bundle with every digest intact', async () => {
    const out = await makeTempDir('airlock-oci-');
    await skopeoOk(['copy', '--all', `oci-archive:${bundle}:${ref(up.refs.ociIndex.path)}`, `oci:${out}:x`]);
    const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    assert.equal(index.manifests[0]?.digest, up.refs.ociIndex.pushed.digest);
    for (const child of up.refs.ociIndex.children ?? []) {
      assert.ok(existsSync(path.join(out, 'blobs/sha256', child.digest.slice(7))));
      for (const l of child.layerDescriptors) assert.ok(existsSync(path.join(out, 'blobs/sha256', l.digest.slice(7))));
    }
  });

  it('keeps the Trivy DB layer media type and title', async () => {
    const raw = await skopeoOk(['inspect', '--raw', `oci-archive:${bundle}:${ref(up.refs.trivyDb.path)}`]);
    const m = JSON.parse(raw.toString('utf8')) as { layers: Array<{ mediaType: string; annotations: Record<string, string> }> };
    assert.equal(m.layers[0]?.mediaType, TRIVY_DB_LAYER);
    assert.equal(m.layers[0]?.annotations['org.opencontainers.image.title'], 'db.tar.gz');
  });

  it('puts files at their SPEC §3 paths with the right sha256', async () => {
    const entries = await readTar(bundle);
    const bj = await bundleJson(bundle);
    for (const f of [up.opensearch, up.driver, up.tool]) {
      const e = entry(entries, `files/${f.landing}`);
      assert.ok(e.data.equals(f.bytes), f.landing);
      const rec = bj.files.find((x) => x.path === f.landing);
      assert.equal(rec?.sha256, f.sha256);
      assert.equal(rec?.size, f.bytes.length);
    }
    const roles = Object.fromEntries(bj.files.map((f) => [f.path, f.role]));
    assert.equal(roles[up.opensearch.landing], 'opensearch-plugin');
    assert.equal(roles[up.driver.landing], 'falco-driver');
    assert.equal(roles[up.tool.landing], 'file');
    // The driver was fetched with %2B and lands with a literal +.
    assert.match(bj.files.find((f) => f.role === 'falco-driver')?.source ?? '', /\/driver\/8\.1\.0%2Bdriver\/x86_64\//);
    assert.equal(bj.files.find((f) => f.role === 'opensearch-plugin')?.checksum, 'checksum-url');
    assert.equal(bj.files.find((f) => f.role === 'falco-driver')?.checksum, 'pinned-at-build');
  });
});

describe('build with a proxy in front of the registry', () => {
  let proxy: TestFaultProxy;
  before(async () => {
    proxy = await startFaultProxy(up.registry.url);
  });
  after(async () => {
    await proxy?.stop();
  });

  it('a warm-cache rebuild fetches no blob and no file again', async () => {
    const cache = path.join(await makeTempDir('airlock-cache-'), 'c');
    const first = await buildWith(up.manifest({ registryHost: proxy.host }), ['--cache', cache, '--json']);
    assert.equal(first.r.code, 0, first.r.stderr);
    assert.ok(proxy.stats.blobBytes() > 0);
    proxy.stats.reset();
    const second = await buildWith(up.manifest({ registryHost: proxy.host }), ['--cache', cache, '--json']);
    assert.equal(second.r.code, 0, second.r.stderr);
    assert.equal(proxy.stats.blobBytes(), 0, 'no blob bytes crossed the proxy');
    assert.equal(proxy.stats.requests.filter((r) => r.path.includes('/blobs/')).length, 0, 'no blob requests at all');
    const summary = JSON.parse(second.r.stdout) as { downloadedBytes: number; items: unknown[] };
    assert.equal(summary.downloadedBytes, 0);
    assert.equal(summary.items.length, 10);
    // The same content: identical bundle.json apart from the time it was made.
    const a = await bundleJson(first.bundle);
    const b = await bundleJson(second.bundle);
    assert.deepEqual({ ...a, created: '' }, { ...b, created: '' });
  });

  it('survives 429 with Retry-After and a connection dropped mid-blob', async () => {
    proxy.stats.reset();
    const shared = up.sharedLayer;
    proxy.addRule({ kind: 'status', status: 429, retryAfter: 1, match: /\/manifests\//, times: 2 });
    proxy.addRule({ kind: 'status', status: 503, match: /\/blobs\//, times: 1 });
    proxy.addRule({ kind: 'drop', afterBytes: 100_000, match: new RegExp(`/blobs/${shared}`), times: 1 });
    const b = await buildWith(up.manifest({ registryHost: proxy.host }));
    assert.equal(b.r.code, 0, b.r.stderr);
    assert.equal(proxy.pendingRules, 0, 'every fault was hit');
    const statuses = proxy.stats.requests.map((r) => r.status);
    assert.ok(statuses.includes(429) && statuses.includes(503));
    // The dropped blob was resumed with Range: less crossed than the cut-off part plus a whole second copy.
    const sharedBytes = [...proxy.stats.bytesByPath.entries()].filter(([p]) => p.endsWith(shared)).reduce((s, [, v]) => s + v, 0);
    const size = 300_331;
    assert.ok(sharedBytes >= size && sharedBytes < 100_000 + size, `shared layer bytes sent: ${sharedBytes}`);
    assert.equal(proxy.stats.requests.filter((r) => r.path.endsWith(shared) && r.status === 206).length, 1, 'one Range request answered 206');
    const entries = await readTar(b.bundle);
    const layer = entry(entries, `blobs/sha256/${shared.slice(7)}`);
    assert.equal(`sha256:${createHash('sha256').update(layer.data).digest('hex')}`, shared);
  });
});

describe('a stalled transfer', () => {
  it('is given up after AIRLOCK_STALL_TIMEOUT seconds without a byte and resumed', async () => {
    const proxy = await startFaultProxy(up.registry.url);
    try {
      proxy.addRule({ kind: 'stall', afterBytes: 50_000, ms: 30_000, match: new RegExp(`/blobs/${up.sharedLayer}`) });
      const started = Date.now();
      const b = await buildWith(up.manifest({ registryHost: proxy.host }), [], { AIRLOCK_STALL_TIMEOUT: '1' });
      assert.equal(b.r.code, 0, b.r.stderr);
      assert.ok(Date.now() - started < 25_000, 'did not wait for the stall to end');
      assert.ok(proxy.stats.requests.some((q) => q.path.endsWith(up.sharedLayer) && q.status === 206), 'resumed with a Range request');
    } finally {
      await proxy.stop();
    }
  });
});

describe('failures', () => {
  it('a wrong file checksum and a missing image are both named, and no bundle is written', async () => {
    const wrong = 'f'.repeat(64);
    const text = up.manifest({
      extra: `    - url: ${up.files.url}/${up.tool.urlPath}\n      path: tools/wrong.bin\n      sha256: ${wrong}\n`,
    }).replace('  images:\n', `  images:\n    - ${up.registry.host}/team/does-not-exist:1\n`);
    const b = await buildWith(text);
    assert.equal(b.r.code, 1);
    assert.match(b.r.stderr, /2 of 12 items failed; no bundle was written/);
    assert.match(b.r.stderr, new RegExp(`image ${up.registry.host}/team/does-not-exist:1: .*not found`));
    assert.match(b.r.stderr, new RegExp(`file tools/wrong.bin: .*${up.tool.urlPath.replace(/[.]/g, '\\.')}: checksum mismatch: expected sha256:${wrong}, got sha256:${up.tool.sha256}`));
    assert.equal(existsSync(b.bundle), false);
    assert.equal(existsSync(`${b.bundle}.sha256`), false);
  });

  it('a bad key fails before anything is downloaded', async () => {
    const proxy = await startFaultProxy(up.registry.url);
    try {
      const dir = await makeTempDir('airlock-key-');
      const badKey = path.join(dir, 'bad.key');
      await writeFile(badKey, 'not a key');
      await writeFile(path.join(dir, 'm.yaml'), up.manifest({ registryHost: proxy.host }));
      const r = await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', path.join(dir, 'b.tar'), '--key', badKey, '--cache', path.join(dir, 'c')]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /bad\.key is not a PEM private key/);
      assert.equal(proxy.stats.requests.length, 0, 'no request reached the registry');
    } finally {
      await proxy.stop();
    }
  });
});

describe('reproducibility and options', () => {
  it('two builds with the same SOURCE_DATE_EPOCH are byte-identical', async () => {
    const env = { SOURCE_DATE_EPOCH: '1767225600' };
    const a = await buildWith(up.manifest(), [], env);
    const b = await buildWith(up.manifest(), [], env);
    assert.equal(a.r.code, 0, a.r.stderr);
    assert.equal(b.r.code, 0, b.r.stderr);
    const [x, y] = await Promise.all([readFile(a.bundle), readFile(b.bundle)]);
    assert.ok(x.equals(y), 'identical bytes');
    const bj = await bundleJson(a.bundle);
    assert.equal(bj.created, '2026-01-01T00:00:00.000Z');
    const entries = await readTar(a.bundle);
    assert.ok(entries.every((e) => e.mtime.getTime() === 1767225600_000));
  });

  it('--dry-run resolves everything, prints items with sizes and a total, and downloads no blob', async () => {
    const b = await buildWith(up.manifest(), ['--dry-run']);
    assert.equal(b.r.code, 0, b.r.stderr);
    assert.match(b.r.stdout, new RegExp(`image +${up.registry.host}/team/app:1.0 +\\d+(\\.\\d)? KiB`));
    assert.match(b.r.stdout, /file +opensearch\/repository-s3-2\.19\.4\.zip +146\.5 KiB/);
    assert.match(b.r.stdout, /^total \d+(\.\d)? (KiB|MiB) in \d+ blobs and 3 files; downloaded 0 B$/m);
    assert.equal(existsSync(b.bundle), false);
    // Only manifests (small JSON) in the cache: no layer.
    const blobs = readdirSync(path.join(b.cache, 'blobs/sha256'));
    assert.ok(!blobs.includes(up.sharedLayer.slice(7)));
  });

  it('--platform rewrites indexes to keep that platform and records the upstream digest', async () => {
    const b = await buildWith(up.manifest(), ['--platform', 'linux/amd64']);
    assert.equal(b.r.code, 0, b.r.stderr);
    const entries = await readTar(b.bundle);
    const bj = JSON.parse(entry(entries, 'bundle.json').data.toString('utf8')) as BundleJson;
    const idx = bj.images.find((i) => i.ref === ref(up.refs.ociIndex.path));
    assert.equal(idx?.upstreamDigest, up.refs.ociIndex.pushed.digest);
    assert.notEqual(idx?.digest, up.refs.ociIndex.pushed.digest);
    assert.deepEqual(idx?.platforms, ['linux/amd64']);
    const rewritten = JSON.parse(entry(entries, `blobs/sha256/${idx?.digest.slice(7)}`).data.toString('utf8')) as { manifests: Array<{ digest: string }> };
    const [amd64, arm64] = up.refs.ociIndex.children ?? [];
    assert.deepEqual(rewritten.manifests.map((m) => m.digest), [amd64?.digest]);
    const names = new Set(entries.map((e) => e.name));
    assert.ok(!names.has(`blobs/sha256/${arm64?.digest.slice(7)}`), 'the arm64 manifest is left out');
    // The digest-pinned image is untouched; skopeo still reads the rewritten index.
    assert.equal(bj.images.find((i) => i.ref === ref(up.refs.digestOnly.path))?.digest, up.refs.digestOnly.pushed.digest);
    await skopeoOk(['inspect', '--raw', `oci-archive:${b.bundle}:${ref(up.refs.ociIndex.path)}`]);
  });

  it('a Falco plugin keeps every platform even with --platform, and unpacks as a falcoctl plugin entry', async () => {
    const text = `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: plugins}\nspec:\n  platforms: [linux/amd64]\n  falco:\n    plugins: [${ref(up.falcoPlugin.path)}]\n`;
    const b = await buildWith(text, ['--platform', 'linux/amd64']);
    assert.equal(b.r.code, 0, b.r.stderr);
    const bj = await bundleJson(b.bundle);
    assert.deepEqual(bj.images.map((i) => [i.ref, i.role, i.digest, i.upstreamDigest]), [[ref(up.falcoPlugin.path), 'falco-plugin', up.falcoPlugin.pushed.digest, undefined]]);
    const raw = await skopeoOk(['inspect', '--raw', `oci-archive:${b.bundle}:${ref(up.falcoPlugin.path)}`]);
    assert.ok(raw.equals(up.falcoPlugin.pushed.manifest), 'the index is byte-identical: both platforms kept');
    const files = await makeTempDir('airlock-files-');
    const target = await startRegistry();
    try {
      const u = await runAirlock(['unpack', b.bundle, '--pub', pub, '--registry', target.host, '--files-dir', files]);
      assert.equal(u.code, 0, u.stderr);
      const index = parseYaml(await readFile(path.join(files, 'falco/index.yaml'), 'utf8')) as Array<{ name: string; type: string; repository: string }>;
      assert.deepEqual(index.map((e) => [e.name, e.type, e.repository]), [['k8saudit', 'plugin', 'falcosecurity/plugins/plugin/k8saudit']]);
    } finally {
      await target.stop();
    }
  });

  it('an encrypted key works with AIRLOCK_KEY_PASSWORD and fails without it', async () => {
    const dir = await makeTempDir('airlock-enc-');
    const k = await runAirlock(['keygen', '--out', path.join(dir, 'enc')], undefined, { env: { ...process.env, AIRLOCK_KEY_PASSWORD: 's3cret' } });
    assert.equal(k.code, 0, k.stderr);
    assert.match(await readFile(path.join(dir, 'enc.key'), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
    const args = ['build', '--key', path.join(dir, 'enc.key'), '--cache', path.join(dir, 'c'), '-o', path.join(dir, 'b.tar')];
    await writeFile(path.join(dir, 'm.yaml'), up.manifest());
    const without = await runAirlock([...args, path.join(dir, 'm.yaml')], undefined, { env: { ...process.env, AIRLOCK_KEY_PASSWORD: '' } });
    assert.equal(without.code, 1);
    assert.match(without.stderr, /it is encrypted; set AIRLOCK_KEY_PASSWORD/);
    const withPw = await runAirlock([...args, path.join(dir, 'm.yaml')], undefined, { env: { ...process.env, AIRLOCK_KEY_PASSWORD: 's3cret' } });
    assert.equal(withPw.code, 0, withPw.stderr);
    await runOk('openssl', ['pkey', '-in', path.join(dir, 'enc.key'), '-passin', 'pass:s3cret', '-noout']);
  });

  it('keygen refuses to overwrite', async () => {
    const r = await runAirlock(['keygen', '--out', path.join(work, 'signer')]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /signer\.key already exists; refusing to overwrite/);
  });
});

interface BundleJson {
  schemaVersion: number;
  name: string;
  version: string;
  created: string;
  tool: string;
  images: Array<{ ref: string; digest: string; mediaType: string; kind: string; role?: string; upstreamDigest?: string; platforms: string[]; size: number }>;
  files: Array<{ path: string; sha256: string; size: number; source: string; role: string; checksum: string }>;
  blobs: Array<{ digest: string; size: number }>;
  layout: Record<string, { sha256: string; size: number }>;
}

async function bundleJson(bundle: string): Promise<BundleJson> {
  return JSON.parse(entry(await readTar(bundle), 'bundle.json').data.toString('utf8')) as BundleJson;
}


