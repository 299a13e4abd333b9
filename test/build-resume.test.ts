// SIGKILL in the middle of a build, then the same build again: it completes,
// and what was already downloaded does not cross the wire a second time.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AIRLOCK, runAirlock } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { makeTempDir } from './support/proc.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let up: Upstream;
let proxy: TestFaultProxy;

before(async () => {
  up = await startUpstream({ sharedLayerBytes: 4_000_000 });
  proxy = await startFaultProxy(up.registry.url);
});
after(async () => {
  await proxy?.stop();
  await up?.stop();
});

/** Blob bytes the proxy sent, by digest (a blob may be fetched through several repositories). */
function bytesByDigest(): Map<string, number> {
  const out = new Map<string, number>();
  for (const [p, n] of proxy.stats.bytesByPath) {
    const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(p);
    if (m?.[1]) out.set(m[1], (out.get(m[1]) ?? 0) + n);
  }
  return out;
}

async function waitFor(what: string, cond: () => boolean, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

it('a build killed with SIGKILL mid-blob finishes on rerun without fetching finished blobs again', async () => {
  const dir = await makeTempDir('airlock-resume-');
  const manifest = path.join(dir, 'm.yaml');
  await writeFile(manifest, up.manifest({ registryHost: proxy.host }));
  assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
  const args = [AIRLOCK, 'build', manifest, '-o', path.join(dir, 'b.tar'), '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, 'cache')];

  // The big shared layer stalls after 1.5 MB; everything else flows.
  const big = up.sharedLayer;
  proxy.addRule({ kind: 'stall', afterBytes: 1_500_000, ms: 60_000, match: new RegExp(`/blobs/${big}`) });
  const child = spawn(process.execPath, args, { stdio: 'ignore' });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_c, sig) => resolve(sig)));
  await waitFor('the big layer to stall', () => (bytesByDigest().get(big) ?? 0) >= 1_500_000);
  // Let the small blobs finish meanwhile: sent by the proxy, and verified into the cache.
  await waitFor('other blobs', () => [...bytesByDigest().keys()].length >= 8);
  const storedNow = () => (existsSync(path.join(dir, 'cache', 'blobs', 'sha256')) ? readdirSync(path.join(dir, 'cache', 'blobs', 'sha256')) : []);
  await waitFor('finished blobs in the cache', () => storedNow().length >= 5);
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGKILL');
  assert.equal(await exited, 'SIGKILL');
  assert.equal(existsSync(path.join(dir, 'b.tar')), false, 'no bundle from the killed run');
  const first = bytesByDigest();
  // What the killed build had stored (bytes the proxy sent may still have been in a socket buffer).
  const stored = new Set(readdirSync(path.join(dir, 'cache', 'blobs', 'sha256')).map((hex) => `sha256:${hex}`));
  proxy.clearRules();
  proxy.stats.reset();

  const r = await runAirlock(args.slice(1));
  assert.equal(r.code, 0, r.stderr);
  assert.ok(existsSync(path.join(dir, 'b.tar')));
  const second = bytesByDigest();

  const sizes = new Map<string, number>();
  const bj = JSON.parse(execFileSync('tar', ['-xOf', path.join(dir, 'b.tar'), 'bundle.json']).toString('utf8')) as { blobs: Array<{ digest: string; size: number }> };
  for (const b of bj.blobs) sizes.set(b.digest, b.size);
  let finished = 0;
  for (const [digest, sent] of first) {
    const size = sizes.get(digest) ?? -1;
    // Sent whole by the proxy and verified into the cache before the kill: never fetched again.
    if (sent >= size && stored.has(digest) && digest !== big) {
      finished++;
      assert.equal(second.get(digest) ?? 0, 0, `${digest} was stored before the kill and was not fetched again`);
    }
  }
  assert.ok(finished >= 5, `${finished} blobs had finished before the kill`);
  // The interrupted layer resumed from what reached the disk: less than a whole second copy.
  const again = second.get(big) ?? 0;
  assert.ok(again > 0 && again < 4_000_000 - 500_000, `resumed the big layer, sending ${again} more bytes`);
  assert.ok(proxy.stats.requests.some((q) => q.path.endsWith(big) && q.status === 206), 'with a Range request');
  // No partial files remain in the cache, and the killed build's lock was taken over and let go.
  assert.deepEqual(readdirSync(path.join(dir, 'cache', 'partial')), []);
  assert.deepEqual(readdirSync(path.join(dir, 'cache', 'locks')), []);
});
