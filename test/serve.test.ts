// airlock serve: the bundle as a read-only registry and file server, pulled
// from with skopeo and raw HTTP.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { Agent, request } from 'undici';
import { runAirlock } from './support/cli.js';
import { makeTempDir } from './support/proc.js';
import { ACCEPT_ALL_MANIFESTS } from './support/seed.js';
import { startServe, type Served } from './support/serve.js';
import { skopeo, skopeoOk } from './support/skopeo.js';
import { flip, writeEntries } from './support/tamper.js';
import { readTar } from './support/tarball.js';
import { makeCA, makeServerCert } from './support/tls.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let up: Upstream;
let dir: string;
let bundle: string;
let pub: string;
let served: Served;
const agent = new Agent();

async function get(url: string, headers: Record<string, string> = {}, method: 'GET' | 'HEAD' | 'PUT' | 'DELETE' | 'POST' = 'GET') {
  const res = await request(url, { method, headers, dispatcher: agent, ...(method === 'PUT' || method === 'POST' ? { body: 'x' } : {}) });
  const body = method === 'HEAD' ? (await res.body.dump(), Buffer.alloc(0)) : Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

before(async () => {
  up = await startUpstream();
  dir = await makeTempDir('airlock-serve-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
  pub = path.join(dir, 'k.pub');
  await writeFile(path.join(dir, 'm.yaml'), up.manifest());
  bundle = path.join(dir, 'b.tar');
  const b = await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', bundle, '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, 'c')]);
  assert.equal(b.code, 0, b.stderr);
  served = await startServe(bundle, pub);
});
after(async () => {
  await served?.stop();
  await agent.close();
  await up?.stop();
});

describe('registry API', () => {
  it('skopeo copies an index, a Docker manifest list, a schema2 image and a Trivy DB artifact with the upstream digests', async () => {
    for (const k of ['ociIndex', 'docker', 'trivyDb'] as const) {
      const s = up.refs[k];
      const out = await makeTempDir('airlock-pull-');
      await skopeoOk(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${served.host}/${s.path}`, `oci:${out}:x`]);
      const index = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
      assert.equal(index.manifests[0]?.digest, s.pushed.digest, `${s.path} digest`);
      const bytes = await readFile(path.join(out, 'blobs/sha256', s.pushed.digest.slice(7)));
      assert.ok(bytes.equals(s.pushed.manifest));
    }
    // skopeo 1.9 will not write a Docker manifest list into an OCI layout without converting it, so into dir:.
    const s = up.refs.dockerList;
    const out = await makeTempDir('airlock-pull-');
    await skopeoOk(['copy', '--all', '--preserve-digests', '--src-tls-verify=false', `docker://${served.host}/${s.path}`, `dir:${out}`]);
    assert.ok((await readFile(path.join(out, 'manifest.json'))).equals(s.pushed.manifest));
    for (const child of s.children ?? []) {
      assert.ok((await readFile(path.join(out, `${child.digest.slice(7)}.manifest.json`))).equals(child.manifest));
    }
  });

  it('answers manifests with exact bytes, media type and Docker-Content-Digest, by tag and by digest, flat and under the upstream host', async () => {
    const s = up.refs.ociIndex;
    const hostPrefix = up.registry.host.replace(':', '_');
    for (const p of [`/v2/team/app/manifests/1.0`, `/v2/team/app/manifests/${s.pushed.digest}`, `/v2/${hostPrefix}/team/app/manifests/1.0`]) {
      const r = await get(`${served.registry}${p}`, { accept: ACCEPT_ALL_MANIFESTS });
      assert.equal(r.status, 200, p);
      assert.ok(r.body.equals(s.pushed.manifest), p);
      assert.equal(r.headers['content-type'], s.pushed.mediaType);
      assert.equal(r.headers['docker-content-digest'], s.pushed.digest);
    }
    const pinned = up.refs.digestOnly;
    const r = await get(`${served.registry}/v2/team/pinned/manifests/${pinned.pushed.digest}`);
    assert.ok(r.body.equals(pinned.pushed.manifest));
    const head = await get(`${served.registry}/v2/team/app/manifests/1.0`, {}, 'HEAD');
    assert.equal(head.headers['content-length'], String(s.pushed.manifest.length));
  });

  it('serves blob ranges with the right bytes', async () => {
    const layer = up.sharedLayer;
    const whole = await get(`${served.registry}/v2/team/app/blobs/${layer}`);
    assert.equal(`sha256:${createHash('sha256').update(whole.body).digest('hex')}`, layer);
    const r = await get(`${served.registry}/v2/team/app/blobs/${layer}`, { range: 'bytes=1000-1999' });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 1000-1999/${whole.body.length}`);
    assert.ok(r.body.equals(whole.body.subarray(1000, 2000)));
    const tail = await get(`${served.registry}/v2/team/app/blobs/${layer}`, { range: 'bytes=-100' });
    assert.ok(tail.body.equals(whole.body.subarray(whole.body.length - 100)));
    assert.equal((await get(`${served.registry}/v2/team/app/blobs/${layer}`, { range: `bytes=${whole.body.length}-` })).status, 416);
  });

  it('lists tags and the catalog, and answers unknown names with OCI error codes', async () => {
    const tags = JSON.parse((await get(`${served.registry}/v2/team/app/tags/list`)).body.toString('utf8')) as { name: string; tags: string[] };
    assert.deepEqual(tags, { name: 'team/app', tags: ['1.0'] });
    const cat = JSON.parse((await get(`${served.registry}/v2/_catalog`)).body.toString('utf8')) as { repositories: string[] };
    for (const r of ['team/app', 'team/docker-app', 'team/docker-multi', 'pause', 'team/pinned', 'aquasecurity/trivy-db', 'falcosecurity/rules/falco-rules']) assert.ok(cat.repositories.includes(r), r);
    assert.ok(cat.repositories.includes(`${up.registry.host.replace(':', '_')}/team/app`));
    assert.deepEqual([...cat.repositories].sort(), cat.repositories);
    const paged = await get(`${served.registry}/v2/_catalog?n=2`);
    assert.equal((JSON.parse(paged.body.toString('utf8')) as { repositories: string[] }).repositories.length, 2);
    assert.match(String(paged.headers.link), /rel="next"/);
    const missing = await get(`${served.registry}/v2/nope/manifests/1`);
    assert.equal(missing.status, 404);
    assert.equal((JSON.parse(missing.body.toString('utf8')) as { errors: Array<{ code: string }> }).errors[0]?.code, 'NAME_UNKNOWN');
    const noTag = await get(`${served.registry}/v2/team/app/manifests/9.9`);
    assert.equal((JSON.parse(noTag.body.toString('utf8')) as { errors: Array<{ code: string }> }).errors[0]?.code, 'MANIFEST_UNKNOWN');
    const otherRepoBlob = await get(`${served.registry}/v2/pause/blobs/${up.sharedLayer}`);
    assert.equal(otherRepoBlob.status, 404, 'a blob is served only in the repositories that use it');
  });

  it('answers writes with 405', async () => {
    for (const [method, p] of [['PUT', '/v2/team/app/manifests/2.0'], ['POST', '/v2/team/app/blobs/uploads/'], ['DELETE', `/v2/team/app/manifests/${up.refs.ociIndex.pushed.digest}`]] as const) {
      const r = await get(`${served.registry}${p}`, {}, method);
      assert.equal(r.status, 405, `${method} ${p}`);
    }
    assert.equal((await get(`${served.files}/opensearch/x.zip`, {}, 'PUT')).status, 405);
  });

  it('answers a malformed path with 400, not a crash', async () => {
    assert.equal((await get(`${served.registry}/v2/team%E0%A4%A/manifests/1.0`)).status, 400);
    assert.equal((await get(`${served.files}/opensearch%E0%A4%A.zip`)).status, 400);
    assert.equal((await get(`${served.registry}/v2/`)).status, 200, 'still serving');
  });

  it('logs an access line per request', () => {
    assert.match(served.log(), /127\.0\.0\.1 GET \/v2\/team\/app\/manifests\/1\.0 200 \d+ \d+ms/);
  });
});

describe('file server', () => {
  it('serves files with Range, and a falcoctl index pointing at the serve address', async () => {
    const url = `${served.files}/falco/driver/8.1.0%2Bdriver/x86_64/falco_debian_6.1.0-13-amd64_1.ko`;
    const whole = await get(url);
    assert.equal(whole.status, 200);
    assert.equal(createHash('sha256').update(whole.body).digest('hex'), up.driver.sha256);
    const part = await get(`${served.files}/${up.opensearch.landing}`, { range: 'bytes=10-19' });
    assert.equal(part.status, 206);
    assert.ok(part.body.equals(up.opensearch.bytes.subarray(10, 20)));
    assert.equal((await get(`${served.files}/nope.bin`)).status, 404);
    const index = parseYaml((await get(`${served.files}/falco/index.yaml`)).body.toString('utf8')) as Array<{ registry: string; repository: string; type: string }>;
    assert.deepEqual(index.map((e) => [e.registry, e.repository, e.type]), [[served.host, 'falcosecurity/rules/falco-rules', 'rulesfile']]);
  });
});

describe('falco/index.yaml names the configured registry address, never the request\'s Host header', () => {
  type Index = Array<{ registry: string; repository: string }>;
  const indexWithHost = async (files: string, host: string) => parseYaml((await get(`${files}/falco/index.yaml`, { host })).body.toString('utf8')) as Index;

  it('the --listen address; on all addresses, this machine\'s host name with the registry port, said at start; or --registry-host', async () => {
    assert.deepEqual((await indexWithHost(served.files, 'attacker.example:443')).map((e) => e.registry), [served.host]);
    const s = await startServe(bundle, pub, ['--listen', '0.0.0.0:0']);
    try {
      const named = `${hostname()}:${new URL(s.registry).port}`;
      assert.deepEqual((await indexWithHost(s.files, 'attacker.example:443')).map((e) => e.registry), [named]);
      assert.ok(s.log().includes(`falco/index.yaml names the registry ${named}`), s.log());
      assert.match(s.log(), /set --registry-host HOST\[:PORT\]/);
    } finally {
      await s.stop();
    }
    const t = await startServe(bundle, pub, ['--listen', '[::]:0', '--registry-host', 'registry.airgap.internal:5000']);
    try {
      assert.deepEqual((await indexWithHost(t.files, 'attacker.example:443')).map((e) => e.registry), ['registry.airgap.internal:5000']);
      assert.ok(!t.log().includes('--registry-host HOST'), 'nothing to say when it is set');
    } finally {
      await t.stop();
    }
  });

  it('a --registry-host that is not HOST[:PORT] is a usage error', async () => {
    for (const bad of ['https://registry.internal', 'registry.internal/prefix', 'registry.internal:99999', 'a b']) {
      const r = await runAirlock(['serve', bundle, '--pub', pub, '--listen', '127.0.0.1:0', '--files-listen', '127.0.0.1:0', '--registry-host', bad]);
      assert.equal(r.code, 2, bad);
      assert.match(r.stderr, /--registry-host \S.*: write HOST\[:PORT\]/);
    }
  });
});

describe('a bundle with a corrupt blob and a corrupt file', () => {
  it('starts (the signature holds) but never serves the bad bytes: the client gets an error', async () => {
    const entries = await readTar(bundle);
    const bad = path.join(dir, 'bad.tar');
    const layerName = `blobs/sha256/${up.sharedLayer.slice(7)}`;
    await writeEntries(bad, entries.map((e) => ({ name: e.name, data: e.name === layerName || e.name === `files/${up.tool.landing}` ? flip(e.data) : e.data })));
    const s = await startServe(bad, pub);
    try {
      const r = await get(`${s.registry}/v2/team/app/blobs/${up.sharedLayer}`);
      assert.equal(r.status, 500);
      assert.equal((JSON.parse(r.body.toString('utf8')) as { errors: Array<{ code: string }> }).errors[0]?.code, 'BLOB_UNKNOWN');
      const ranged = await get(`${s.registry}/v2/team/app/blobs/${up.sharedLayer}`, { range: 'bytes=0-99' });
      assert.equal(ranged.status, 500, 'not even a range of it');
      const f = await get(`${s.files}/${up.tool.landing}`);
      assert.equal(f.status, 500);
      const fail = await runSkopeoFailure(`docker://${s.host}/${up.refs.ociIndex.path}`);
      assert.notEqual(fail, 0, 'skopeo fails instead of getting wrong data');
      // Entries that are fine are still served.
      const ok = await get(`${s.registry}/v2/pause/manifests/3.9`);
      assert.equal(ok.status, 200);
      assert.match(s.log(), /refusing blobs\/sha256\/[a-f0-9]{64}: entry .* is corrupt/);
    } finally {
      await s.stop();
    }
  });

  it('a bundle signed by another key does not start', async () => {
    assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'other')])).code, 0);
    const r = await runAirlock(['serve', bundle, '--pub', path.join(dir, 'other.pub'), '--listen', '127.0.0.1:0', '--files-listen', '127.0.0.1:0']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not verify/);
  });
});

describe('TLS and shutdown', () => {
  it('serves over HTTPS with --tls-cert/--tls-key and stops cleanly on SIGINT', async () => {
    const certDir = await makeTempDir('airlock-serve-tls-');
    const ca = await makeCA(certDir);
    const cert = await makeServerCert(certDir, ca, { ip: '127.0.0.1', dns: ['localhost'] });
    const s = await startServe(bundle, pub, ['--tls-cert', cert.cert, '--tls-key', cert.key]);
    try {
      assert.match(s.registry, /^https:\/\//);
      const tlsAgent = new Agent({ connect: { ca: await readFile(ca.caCert) } });
      const res = await request(`${s.registry}/v2/team/app/manifests/1.0`, { headers: { accept: ACCEPT_ALL_MANIFESTS }, dispatcher: tlsAgent });
      const body = Buffer.from(await res.body.arrayBuffer());
      await tlsAgent.close();
      assert.ok(body.equals(up.refs.ociIndex.pushed.manifest));
    } finally {
      const { code } = await s.stop('SIGINT');
      assert.equal(code, 0, 'exit 0 after SIGINT');
      assert.match(s.log(), /SIGINT: finishing open requests and stopping/);
    }
  });
});

async function runSkopeoFailure(src: string): Promise<number | null> {
  const out = await makeTempDir('airlock-pull-');
  const r = await skopeo(['copy', '--all', '--src-tls-verify=false', src, `oci:${out}:x`]);
  return r.code;
}
