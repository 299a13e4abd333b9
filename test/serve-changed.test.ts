// A bundle changed on disk while airlock serve has it open (a byte flipped in
// place inside a blob): no client gets a complete response with wrong bytes,
// whether the change came before its request or while the body was going out,
// for a whole GET and for a Range GET.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { BundleReader } from '../src/bundle/reader.js';
import { BLOBS_PREFIX } from '../src/bundle/format.js';
import { loadPublicKey } from '../src/sign/keys.js';
import { makeBlobBundle, patternedSlice, type BlobBundle } from './support/blobbundle.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startServe, type Served } from './support/serve.js';

const MiB = 1024 * 1024;
const BIG = 48 * MiB;
const MEDIUM = MiB;
let dir: string;
let bb: BlobBundle;
let big: { digest: string; size: number };
let medium: { digest: string; size: number };
/** Where each blob's bytes start in the bundle file. */
const dataOffset = new Map<string, number>();
let served: Served;
const agent = new Agent({ bodyTimeout: 20_000 });

before(async () => {
  dir = await makeTempDir('airlock-serve-changed-');
  bb = await makeBlobBundle(dir, [{ size: BIG, seed: 'big' }, { size: MEDIUM, seed: 'medium' }]);
  [big, medium] = bb.layers as [typeof big, typeof medium];
  const reader = await BundleReader.open(bb.bundle, { pub: await loadPublicKey(bb.pub) });
  await reader.scan();
  for (const l of bb.layers) dataOffset.set(l.digest, reader.entry(BLOBS_PREFIX + l.digest.slice(7)).dataOffset);
  await reader.close();
  served = await startServe(bb.bundle, bb.pub);
});
after(async () => {
  await served?.stop();
  await agent.close();
  if (dir) await removeTempDir(dir);
});

const blobUrl = (digest: string) => `${served.registry}/v2/${bb.repo}/blobs/${digest}`;

/** Flips one byte of a blob in place in the bundle file (run it again to put it back). */
async function flipInBundle(digest: string, at: number): Promise<void> {
  // A few ms apart, so the file's mtime moves even on a coarse clock.
  await sleep(20);
  const fh = await open(bb.bundle, 'r+');
  try {
    const b = Buffer.alloc(1);
    const pos = (dataOffset.get(digest) ?? assert.fail('no offset')) + at;
    await fh.read(b, 0, 1, pos);
    b[0] = (b[0] ?? 0) ^ 0xff;
    await fh.write(b, 0, 1, pos);
  } finally {
    await fh.close();
  }
}

type Outcome = { status: number; body: Buffer } | { status: number; cut: string; got: number };

/** One request read to its end: the body when it completed, else how far it got. */
async function fetchAll(url: string, headers: Record<string, string> = {}, midway?: () => Promise<void>): Promise<Outcome> {
  const res = await request(url, { dispatcher: agent, headers });
  const chunks: Buffer[] = [];
  let got = 0;
  try {
    for await (const c of res.body) {
      chunks.push(c as Buffer);
      got += (c as Buffer).length;
      if (midway && chunks.length === 1) {
        // Stop reading for a moment (the server stalls on backpressure), change the file, go on.
        await midway();
      }
    }
  } catch (err) {
    return { status: res.statusCode, cut: (err as Error).message, got };
  }
  return { status: res.statusCode, body: Buffer.concat(chunks) };
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('a bundle changed on disk while served', () => {
  it('a change before the request: neither a whole nor a Range GET is served; put back, both are again', async () => {
    const first = await fetchAll(blobUrl(medium.digest), { range: 'bytes=0-99' });
    assert.equal(first.status, 206);
    assert.ok('body' in first && first.body.equals(patternedSlice(MEDIUM, 'medium', 0, 100)));
    const whole = await fetchAll(blobUrl(medium.digest));
    assert.ok('body' in whole && sha(whole.body) === medium.digest);

    await flipInBundle(medium.digest, 500_000);
    // The range asked for is untouched, but the entry no longer hashes to its digest: refused, not served.
    for (const range of ['bytes=0-99', 'bytes=499990-500009', undefined]) {
      const r = await fetchAll(blobUrl(medium.digest), range ? { range } : {});
      assert.equal(r.status, 500, `${range ?? 'whole'} after the change`);
      assert.ok('body' in r && /BLOB_UNKNOWN/.test(r.body.toString('utf8')));
    }
    assert.match(served.log(), /refusing blobs\/sha256\/[a-f0-9]{64}: entry .* is corrupt/);

    await flipInBundle(medium.digest, 500_000);
    const back = await fetchAll(blobUrl(medium.digest), { range: 'bytes=499990-500009' });
    assert.equal(back.status, 206);
    assert.ok('body' in back && back.body.equals(patternedSlice(MEDIUM, 'medium', 499_990, 500_010)));
    const wholeBack = await fetchAll(blobUrl(medium.digest));
    assert.ok('body' in wholeBack && sha(wholeBack.body) === medium.digest);
  });

  it('a change while a whole GET streams: the client gets a short body, never a complete 200', async () => {
    const r = await fetchAll(blobUrl(big.digest), {}, () => flipInBundle(big.digest, BIG - 1000));
    await flipInBundle(big.digest, BIG - 1000);
    assert.equal(r.status, 200);
    assert.ok('cut' in r, 'the body did not complete');
    assert.ok(r.got < BIG, `${r.got} of ${BIG} bytes`);
    assert.match(served.log(), /cut off GET \/v2\/big\/app\/blobs\/sha256:[a-f0-9]{64} before its last bytes: entry .* changed on disk since it was verified: its sha256 is now/);
    assert.match(served.log(), /GET \/v2\/big\/app\/blobs\/sha256:[a-f0-9]{64} 200 \d+ \d+ms \(aborted\)/);
    const again = await fetchAll(blobUrl(big.digest));
    assert.ok('body' in again && sha(again.body) === big.digest, 'put back, the blob is served whole');
  });

  it('a change while a Range GET streams: cut before its last chunk, even when the changed byte is outside the range', async () => {
    for (const at of [BIG - 1000, 5]) {
      const before = served.log().length;
      const r = await fetchAll(blobUrl(big.digest), { range: `bytes=1024-${BIG - 1}` }, () => flipInBundle(big.digest, at));
      await flipInBundle(big.digest, at);
      assert.equal(r.status, 206);
      assert.ok('cut' in r, `the body did not complete (byte ${at} changed)`);
      assert.ok(r.got < BIG - 1024);
      assert.match(served.log().slice(before), /cut off GET \/v2\/big\/app\/blobs\/sha256:[a-f0-9]{64} before its last bytes: entry .* the bundle changed on disk while it was being sent/);
    }
    const part = await fetchAll(blobUrl(big.digest), { range: 'bytes=1000-1999' });
    assert.ok('body' in part && part.body.equals(patternedSlice(BIG, 'big', 1000, 2000)), 'put back, ranges are served again');
  });
});
