/**
 * Smoke test of the test support itself: real docker-registry (plain and
 * TLS + htpasswd), real skopeo, real nginx with WebDAV PUT and Range.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { isAlive, makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, MediaTypes, Seeder, sha256, type PushedImage, type PushedManifest } from './support/seed.js';
import { makeCA } from './support/tls.js';
import { requireBinary } from './support/tools.js';
import { skopeo, skopeoOk } from './support/skopeo.js';

let work: string;

before(async () => {
  work = await makeTempDir('airlock-smoke-');
});

after(async () => {
  await removeTempDir(work);
});



function assertStopped(pid: number): void {
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' });
  assert.equal(isAlive(pid), false);
}

describe('tools', () => {
  it('a missing binary fails with the install hint', () => {
    assert.throws(() => requireBinary('airlock-no-such-tool'), {
      message: 'airlock-no-such-tool not found on PATH: run `sudo bash scripts/install-test-deps.sh`',
    });
  });
  it('finds the real tools', () => {
    for (const b of ['docker-registry', 'skopeo', 'nginx', 'openssl']) {
      assert.ok(path.isAbsolute(requireBinary(b)));
    }
  });
});

describe('plain registry + skopeo', () => {
  let reg: TestRegistry;
  let seeder: Seeder;
  let index: PushedManifest;
  let amd64: PushedImage;
  let arm64: PushedImage;
  let dockerImg: PushedImage;
  let base: Buffer;

  before(async () => {
    reg = await startRegistry();
    seeder = new Seeder(reg);
    base = await makeLayer('base layer', 64 * 1024);
    amd64 = await seeder.pushImage('smoke/multi', undefined, {
      layers: [base, await makeLayer('amd64 top', 20_000)],
      format: 'oci',
      platform: { os: 'linux', architecture: 'amd64' },
    });
    arm64 = await seeder.pushImage('smoke/multi', undefined, {
      layers: [base, await makeLayer('arm64 top', 30_000)],
      format: 'oci',
      platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    });
    index = await seeder.pushIndex('smoke/multi', 'v1', [amd64.descriptor, arm64.descriptor], 'oci');
    dockerImg = await seeder.pushImage('smoke/docker', 'v2', {
      layers: [await makeLayer('docker only', 10_000)],
      format: 'docker',
    });
  });

  after(async () => {
    await seeder.close();
    const { pid, dir } = reg;
    await reg.stop();
    assertStopped(pid);
    assert.equal(existsSync(dir), false);
  });

  it('layers are deterministic, real gzip and do not compress away', async () => {
    assert.deepEqual(await makeLayer('base layer', 64 * 1024), base);
    assert.equal(base[0], 0x1f);
    assert.equal(base[1], 0x8b);
    assert.ok(base.length > 64 * 1024, `layer is ${base.length} bytes`);
    assert.equal(amd64.layerDescriptors[0]?.digest, arm64.layerDescriptors[0]?.digest);
    assert.notEqual(amd64.digest, arm64.digest);
  });

  it('skopeo inspect --raw returns exactly the pushed bytes', async () => {
    const rawIndex = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/smoke/multi:v1`]);
    assert.ok(rawIndex.equals(index.manifest));
    assert.equal(sha256(rawIndex), index.digest);
    const rawDocker = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/smoke/docker:v2`]);
    assert.ok(rawDocker.equals(dockerImg.manifest));
    const rawChild = await skopeoOk([
      'inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/smoke/multi@${arm64.digest}`,
    ]);
    assert.ok(rawChild.equals(arm64.manifest));
    const cfg = await skopeoOk(['inspect', '--config', '--raw', '--tls-verify=false', `docker://${reg.host}/smoke/docker:v2`]);
    assert.ok(cfg.equals(dockerImg.config));
  });

  it('skopeo copy --all of the index to an OCI layout keeps every digest', async () => {
    const layout = path.join(work, 'layout');
    await skopeoOk(['copy', '--all', '--src-tls-verify=false', `docker://${reg.host}/smoke/multi:v1`, `oci:${layout}:v1`]);
    const idx = JSON.parse(await readFile(path.join(layout, 'index.json'), 'utf8')) as {
      manifests: { digest: string; annotations?: Record<string, string> }[];
    };
    assert.equal(idx.manifests.length, 1);
    assert.equal(idx.manifests[0]?.digest, index.digest);
    assert.equal(idx.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'], 'v1');
    const blobs = new Set(await readdir(path.join(layout, 'blobs', 'sha256')));
    const want = [
      index.digest, amd64.digest, arm64.digest, amd64.configDescriptor.digest, arm64.configDescriptor.digest,
      ...amd64.layerDescriptors.map((d) => d.digest), ...arm64.layerDescriptors.map((d) => d.digest),
    ];
    for (const d of want) assert.ok(blobs.has(d.slice('sha256:'.length)), `layout lacks ${d}`);
    assert.equal(blobs.size, new Set(want).size); // base layer stored once
    const onDisk = await readFile(path.join(layout, 'blobs', 'sha256', index.digest.slice(7)));
    assert.ok(onDisk.equals(index.manifest));
  });

  it('raw HTTP: catalog lists the repos, HEAD blob is 200, manifest GET honours Accept', async () => {
    const cat = await seeder.fetch('GET', 'v2/_catalog');
    assert.equal(cat.status, 200);
    const repos = (JSON.parse(cat.body.toString('utf8')) as { repositories: string[] }).repositories;
    assert.deepEqual(repos.sort(), ['smoke/docker', 'smoke/multi']);
    const layer = amd64.layerDescriptors[0];
    assert.ok(layer !== undefined);
    const head = await seeder.fetch('HEAD', `v2/smoke/multi/blobs/${layer.digest}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(layer.size));
    assert.equal(head.headers['docker-content-digest'], layer.digest);
    const m = await seeder.getManifest('smoke/multi', 'v1');
    assert.equal(m.status, 200);
    assert.equal(m.headers['content-type'], MediaTypes.ociIndex);
    assert.ok(m.body.equals(index.manifest));
  });

  it('pushes an OCI artifact with a custom config media type', async () => {
    const art = await seeder.pushArtifact('smoke/artifact', 'v1', {
      artifactType: 'application/vnd.airlock.test',
      configMediaType: 'application/vnd.airlock.test.config.v1+json',
      layerMediaType: 'application/vnd.airlock.test.layer.v1.tar',
      layerBytes: Buffer.from('hello artifact\n'),
      title: 'hello.txt',
    });
    const raw = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/smoke/artifact:v1`]);
    assert.ok(raw.equals(art.manifest));
    const blob = await seeder.fetch('GET', `v2/smoke/artifact/blobs/${art.layerDescriptor.digest}`);
    assert.equal(blob.body.toString(), 'hello artifact\n');
  });
});

describe('TLS + htpasswd registry', () => {
  let reg: TestRegistry;
  let img: PushedImage;
  let certDir: string;

  before(async () => {
    reg = await startRegistry({ basicAuth: { username: 'alice', password: 's3cret-pw' } });
    const seeder = new Seeder(reg);
    try {
      img = await seeder.pushImage('secure/app', '1.0', { layers: [await makeLayer('secure', 4096)], format: 'docker' });
    } finally {
      await seeder.close();
    }
    certDir = path.join(work, 'certs.d');
    await mkdir(certDir);
    assert.ok(reg.caFile !== undefined);
    await copyFile(reg.caFile, path.join(certDir, 'ca.crt'));
  });

  after(async () => {
    const { pid } = reg;
    await reg.stop();
    assertStopped(pid);
  });

  it('serves https with the test CA and asks for Basic credentials', async () => {
    assert.match(reg.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const anon = new Seeder({ url: reg.url, ...(reg.caFile === undefined ? {} : { caFile: reg.caFile }) });
    const authed = new Seeder(reg);
    try {
      const r = await anon.fetch('GET', 'v2/');
      assert.equal(r.status, 401);
      assert.match(r.headers['www-authenticate'] ?? '', /^Basic /);
      const wrong = new Seeder({ ...reg, password: 'nope' });
      assert.equal((await wrong.fetch('GET', 'v2/')).status, 401);
      await wrong.close();
      assert.equal((await authed.fetch('GET', 'v2/')).status, 200);
    } finally {
      await anon.close();
      await authed.close();
    }
    // Without the CA the certificate is not trusted.
    const plain = new Agent();
    await assert.rejects(request(`${reg.url}/v2/`, { dispatcher: plain }));
    await plain.close();
  });

  it('skopeo with --creds and --cert-dir inspects the pushed image', async () => {
    const ref = `docker://${reg.host}/secure/app:1.0`;
    const raw = await skopeoOk(['inspect', '--raw', '--creds', 'alice:s3cret-pw', '--cert-dir', certDir, ref]);
    assert.ok(raw.equals(img.manifest));
    const noCreds = await skopeo(['inspect', '--raw', '--cert-dir', certDir, ref]);
    assert.notEqual(noCreds.code, 0);
  });
});

describe('token-auth registry', () => {
  it('answers /v2/ with a Bearer challenge naming the realm and service', async () => {
    const dir = await makeTempDir('airlock-token-');
    try {
      const ca = await makeCA(dir, 'token signer');
      const reg = await startRegistry({
        tokenAuth: { realm: 'http://127.0.0.1:9/token', service: 'airlock-test', issuer: 'airlock', rootCertBundle: ca.caCert },
      });
      try {
        const s = new Seeder(reg);
        const r = await s.fetch('GET', 'v2/');
        await s.close();
        assert.equal(r.status, 401);
        assert.match(r.headers['www-authenticate'] ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:9\/token",service="airlock-test"/);
      } finally {
        await reg.stop();
      }
      assertStopped(reg.pid);
    } finally {
      await removeTempDir(dir);
    }
  });
});

describe('nginx file server', () => {
  let fs: TestFileServer;
  const body = Buffer.from('0123456789abcdefghij');

  before(async () => {
    fs = await startFileServer();
  });

  after(async () => {
    const { pid } = fs;
    await fs.stop();
    assertStopped(pid);
  });

  it('PUT creates the file (and its directories) under root', async () => {
    const put = await request(`${fs.url}/deep/dir/file.bin`, { method: 'PUT', body });
    await put.body.dump();
    assert.equal(put.statusCode, 201);
    const onDisk = await readFile(path.join(fs.root, 'deep', 'dir', 'file.bin'));
    assert.ok(onDisk.equals(body));
    const again = await request(`${fs.url}/deep/dir/file.bin`, { method: 'PUT', body });
    await again.body.dump();
    assert.equal(again.statusCode, 204);
  });

  it('GET returns the whole file, and a Range request 206 with the right bytes', async () => {
    const whole = await request(`${fs.url}/deep/dir/file.bin`);
    assert.equal(whole.statusCode, 200);
    assert.ok(Buffer.from(await whole.body.arrayBuffer()).equals(body));
    const part = await request(`${fs.url}/deep/dir/file.bin`, { headers: { range: 'bytes=5-9' } });
    assert.equal(part.statusCode, 206);
    assert.equal(part.headers['content-range'], `bytes 5-9/${body.length}`);
    assert.equal(Buffer.from(await part.body.arrayBuffer()).toString(), '56789');
  });

  it('lists directories and deletes files', async () => {
    const idx = await request(`${fs.url}/deep/dir/`);
    assert.equal(idx.statusCode, 200);
    assert.match(await idx.body.text(), /file\.bin/);
    const del = await request(`${fs.url}/deep/dir/file.bin`, { method: 'DELETE' });
    await del.body.dump();
    assert.equal(del.statusCode, 204);
    assert.equal(existsSync(path.join(fs.root, 'deep', 'dir', 'file.bin')), false);
  });
});
