// A Falco driver has no published checksum: airlock pins what it downloads at
// build. A partial file left by an earlier, killed build must then not be
// resumed: with no digest to check, a Range request against a file the server
// has since replaced would splice two versions into one "pinned" file that
// then verifies everywhere. Real nginx serves the driver.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock } from './support/cli.js';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { run } from './support/tools.js';

const VERSION = '8.1.0+driver';
const FILE = 'falco_debian_6.1.0-13-amd64_1.ko';
let files: TestFileServer;
let work: string;

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const versionOf = (tag: string) => Buffer.concat(Array.from({ length: 64 }, (_, i) => createHash('sha512').update(`${tag}-${i}`).digest()).flatMap((h) => Array<Buffer>(64).fill(h)));

before(async () => {
  files = await startFileServer();
  work = await makeTempDir('airlock-cache-pinned-');
});
after(async () => {
  await files?.stop();
  await removeTempDir(work);
});

it('a driver pinned at build is fetched whole when a partial file from an earlier run is in the cache', async () => {
  const served = path.join(files.root, 'driver', VERSION, 'x86_64', FILE);
  await mkdir(path.dirname(served), { recursive: true });
  const oldVersion = versionOf('old');
  const newVersion = versionOf('new');
  assert.equal(oldVersion.length, newVersion.length);
  await writeFile(served, newVersion);

  const cache = path.join(work, 'cache');
  const manifest = path.join(work, 'm.yaml');
  await writeFile(
    manifest,
    `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: pinned\n  version: "1"\nspec:\n  falco:\n    drivers:\n      repoUrl: ${files.url}/driver\n      version: "${VERSION}"\n      kernels:\n        - { target: debian, kernelRelease: 6.1.0-13-amd64, kernelVersion: "1" }\n`,
  );
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  // The cache as a build killed mid-download leaves it: its folders, and the first half of the
  // driver as the server had it then. The partial file's name is the store's key for the URL.
  // falcoctl's URL for it: the version query-escaped (`+` → `%2B`).
  const url = `${files.url}/driver/${encodeURIComponent(VERSION)}/x86_64/${FILE}`;
  const warm = await runAirlock(['build', manifest, '-o', path.join(work, 'warm.tar'), '--key', path.join(work, 'k.key'), '--cache', cache]);
  assert.equal(warm.code, 0, warm.stderr);
  // Only the cache's layout is wanted from that run: its pinned entry goes, a partial file takes its place.
  await run('rm', ['-rf', path.join(cache, 'index', 'url'), path.join(cache, 'blobs')]);
  await writeFile(path.join(cache, 'partial', `url-${createHash('sha256').update(url).digest('hex')}`), oldVersion.subarray(0, oldVersion.length / 2), { mode: 0o644 });

  const bundle = path.join(work, 'b.tar');
  const b = await runAirlock(['build', manifest, '-o', bundle, '--key', path.join(work, 'k.key'), '--cache', cache, '--json']);
  assert.equal(b.code, 0, b.stderr);
  const i = await runAirlock(['inspect', bundle, '--json']);
  const carried = (JSON.parse(i.stdout) as { files: Array<{ path: string; sha256: string; size: number }> }).files;
  assert.equal(carried.length, 1);
  assert.equal(carried[0]?.sha256, sha256(newVersion), 'the pinned driver is exactly what the server serves now, not half an older version spliced in');
  const out = path.join(work, 'out');
  const u = await runAirlock(['verify', bundle, '--pub', path.join(work, 'k.pub')]);
  assert.equal(u.code, 0, u.stderr);
  const x = await run('tar', ['-xf', bundle, '-C', (await mkdir(out), out), `files/${carried[0]?.path ?? ''}`]);
  assert.equal(x.code, 0, x.stderr);
  assert.ok((await readFile(path.join(out, 'files', carried[0]?.path ?? ''))).equals(newVersion));
});
