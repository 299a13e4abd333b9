// A 1 GiB blob through airlock serve: two clients at once get the right
// bytes, and the server's memory stays flat while it streams.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import path from 'node:path';
import { Agent, request } from 'undici';
import { ContentStore } from '../src/cache/store.js';
import { writeBundle } from '../src/bundle/writer.js';
import { keygen, loadPrivateKey, fingerprint } from '../src/sign/keys.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startServe, type Served } from './support/serve.js';

const GiB = 1024 * 1024 * 1024;
let dir: string;
let served: Served;
let layerDigest: string;

/** 1 GiB that is not all zeros: a 1 MiB pseudo-random block with the block number stamped in. */
function* bigChunks(): Generator<Buffer> {
  const block = createHash('sha512').update('airlock').digest();
  const base = Buffer.alloc(1024 * 1024);
  for (let o = 0; o < base.length; o += block.length) block.copy(base, o);
  for (let i = 0; i < GiB / base.length; i++) {
    const b = Buffer.from(base);
    b.writeUInt32BE(i, 0);
    yield b;
  }
}

before(async () => {
  dir = await makeTempDir('airlock-serve-big-');
  const store = new ContentStore(path.join(dir, 'cache'));
  await store.init();
  const layer = await store.ingest({ what: 'big layer', source: { open: async () => ({ body: Readable.from(bigChunks()), offset: 0 }) } });
  layerDigest = layer.digest;
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [layer.digest] } }));
  const configDigest = await store.putBuffer(config);
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size }],
  }));
  const manifestDigest = await store.putBuffer(manifest);
  await keygen(path.join(dir, 'k'));
  const key = await loadPrivateKey(path.join(dir, 'k.key'));
  await writeBundle({
    output: path.join(dir, 'big.tar'),
    store,
    key,
    mtime: new Date(0),
    index: {
      schemaVersion: 1,
      name: 'big',
      version: '1',
      created: new Date(0).toISOString(),
      tool: 'airlock test',
      signer: { fingerprint: fingerprint(key) },
      images: [{ ref: 'example.com/big/app:1', digest: manifestDigest, mediaType: 'application/vnd.oci.image.manifest.v1+json', kind: 'image', platforms: ['linux/amd64'], size: layer.size }],
      files: [],
      blobs: [
        { digest: manifestDigest, size: manifest.length },
        { digest: configDigest, size: config.length },
        { digest: layer.digest, size: layer.size },
      ],
    },
  });
  await removeTempDir(path.join(dir, 'cache'));
  served = await startServe(path.join(dir, 'big.tar'), path.join(dir, 'k.pub'));
});
after(async () => {
  await served?.stop();
  if (dir) await removeTempDir(dir);
});

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

it('two clients pull the same 1 GiB blob at once, both get the right bytes, and serve stays flat in memory', async () => {
  const pid = served.child.pid ?? 0;
  const before = rssMiB(pid);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
  const agent = new Agent({ bodyTimeout: 120_000 });
  try {
    const pull = async () => {
      const res = await request(`${served.registry}/v2/big/app/blobs/${layerDigest}`, { dispatcher: agent });
      assert.equal(res.statusCode, 200);
      const h = createHash('sha256');
      let n = 0;
      for await (const c of res.body) {
        h.update(c as Buffer);
        n += (c as Buffer).length;
      }
      return { digest: `sha256:${h.digest('hex')}`, n };
    };
    const [a, b] = await Promise.all([pull(), pull()]);
    assert.deepEqual(a, { digest: layerDigest, n: GiB });
    assert.deepEqual(b, { digest: layerDigest, n: GiB });
  } finally {
    clearInterval(sampler);
    await agent.close();
  }
  const growth = peak - before;
  process.stdout.write(`# serve RSS ${before.toFixed(0)} MiB before, peak ${peak.toFixed(0)} MiB while two clients pulled 1 GiB each\n`);
  assert.ok(growth < 96, `serve grew by ${growth.toFixed(0)} MiB while streaming 2 GiB (from ${before.toFixed(0)} to ${peak.toFixed(0)} MiB)`);
});
