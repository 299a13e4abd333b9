// Landing paths that collide with a name airlock writes itself among the files
// (the `<path>.sha256` sidecar beside each file, falco/index.yaml) or with each
// other as file and folder: build refuses the manifest (exit 2, both named with
// file:line), and a bundle made by another tool, signed with a valid key, is
// refused by verify, unpack (into a real folder and a real nginx WebDAV) and
// serve before anything is written or pushed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { writeBundle } from '../src/bundle/writer.js';
import type { BundleFile } from '../src/bundle/format.js';
import { ContentStore } from '../src/cache/store.js';
import { fingerprint, keygen, loadPrivateKey } from '../src/sign/keys.js';
import { AIRLOCK, runAirlock, type CliResult } from './support/cli.js';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { freePort } from './support/ports.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const HEAD = 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: t\nspec:\n  files:\n';
const HEX = 'a'.repeat(64);
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** One `files:` entry per path, each on its own lines: entry i's `path:` is on line 8 + 3i. */
function manifestWith(paths: string[]): string {
  return HEAD + paths.map((p, i) => `    - url: http://127.0.0.1:9/f${i}\n      path: ${JSON.stringify(p)}\n      sha256: ${HEX}\n`).join('');
}

async function buildManifest(paths: string[]): Promise<CliResult> {
  const dir = await makeTempDir('airlock-collide-');
  await writeFile(path.join(dir, 'm.yaml'), manifestWith(paths));
  // --dry-run: nothing would be written anyway; the manifest is all that is checked.
  return runAirlock(['build', 'm.yaml', '--dry-run', '--cache', path.join(dir, 'cache')], undefined, { cwd: dir });
}

describe('build refuses landing paths that collide', () => {
  it('a file and another one at its checksum sidecar: exit 2 naming both with file:line', async () => {
    const r = await buildManifest(['tools/a.tgz', 'tools/a.tgz.sha256']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /m\.yaml:11:\d+.*"tools\/a\.tgz\.sha256".*checksum of files\/tools\/a\.tgz.*m\.yaml:8:\d+/);
  });

  it('the same, declared the other way round', async () => {
    const r = await buildManifest(['a.sha256', 'a']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /m\.yaml:11:\d+.*"a".*files\/a\.sha256 is where files\/a\.sha256 lands, and where the checksum of files\/a is written.*m\.yaml:8:\d+/);
  });

  it('a chain a, a.sha256, a.sha256.sha256: each collision reported', async () => {
    const r = await buildManifest(['a', 'a.sha256', 'a.sha256.sha256']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /m\.yaml:11:\d+.*"a\.sha256"/);
    assert.match(r.stderr, /m\.yaml:14:\d+.*"a\.sha256\.sha256".*checksum of files\/a\.sha256/);
  });

  it('falco/index.yaml, which unpack and serve write themselves', async () => {
    const r = await buildManifest(['falco/index.yaml']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /m\.yaml:8:\d+.*"falco\/index\.yaml".*Falco index/);
  });

  it('a file where another needs a folder (a file named falco; tools and tools/x)', async () => {
    const r = await buildManifest(['falco', 'tools', 'tools/x']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /m\.yaml:8:\d+.*"falco".*needs it as a folder/);
    assert.match(r.stderr, /m\.yaml:14:\d+.*"tools\/x".*files\/tools is where files\/tools lands.*m\.yaml:11:\d+/);
  });

  it('names that only look alike are fine (case differs, another suffix)', async () => {
    // The last path is wrong in another way, so that build stops at the manifest instead of fetching.
    const r = await buildManifest(['a', 'A.sha256', 'a.sha512', 'falco/Index.yaml', 'falco/index.yaml.sha256', '../x']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /1 problem/);
    assert.match(r.stderr, /"\.\.\/x" contains "\.\."/);
  });
});

describe('a signed bundle with colliding paths, made by another tool', () => {
  let work: string;
  let bundle: string;
  let pub: string;
  let reg: TestRegistry;
  let nginx: TestFileServer;

  /** A bundle holding these files, signed with the key at `work/k.key`, written by airlock's writer without its manifest checks. */
  async function signedBundle(name: string, contents: ReadonlyArray<readonly [string, Buffer]>): Promise<string> {
    const store = new ContentStore(path.join(work, 'cache'));
    await store.init();
    const files: BundleFile[] = [];
    for (const [p, bytes] of contents) {
      await store.putBuffer(bytes);
      files.push({ path: p, sha256: sha256(bytes), size: bytes.length, source: `http://upstream.example/${p}`, role: 'file', checksum: 'manifest' });
    }
    const key = await loadPrivateKey(path.join(work, 'k.key'));
    const out = path.join(work, name);
    await writeBundle({
      output: out,
      store,
      key,
      mtime: new Date(0),
      index: { schemaVersion: 1, name: 'hostile', version: '1', created: new Date(0).toISOString(), tool: 'not airlock', signer: { fingerprint: fingerprint(key) }, images: [], files, blobs: [] },
    });
    return out;
  }

  before(async () => {
    work = await makeTempDir('airlock-collide-bundle-');
    await keygen(path.join(work, 'k'));
    pub = path.join(work, 'k.pub');
    // What a sidecar of "a" would say, but for other bytes: the path "a" must never end up holding anything but its own.
    bundle = await signedBundle('bundle.tar', [
      ['a', Buffer.from('the signed content of a\n')],
      ['a.sha256', Buffer.from(`${sha256('other bytes')}  a\n`)],
    ]);
    reg = await startRegistry();
    nginx = await startFileServer();
  });
  after(async () => {
    await nginx?.stop();
    await reg?.stop();
  });

  const refused = (r: CliResult) => {
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /files "a" and "a\.sha256" cannot both land: files\/a\.sha256 is where the checksum of files\/a is written/);
  };

  it('verify exits 1 naming both', async () => {
    refused(await runAirlock(['verify', bundle, '--pub', pub]));
  });

  it('unpack --files-dir exits 1; nothing written, nothing pushed', async () => {
    const dir = await makeTempDir('airlock-collide-files-');
    const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', reg.host, '--files-dir', dir]);
    refused(r);
    assert.deepEqual(await readdir(dir), []);
    assert.doesNotMatch(r.stdout, /pushed/);
  });

  it('unpack --files-url (nginx WebDAV) exits 1; nothing PUT', async () => {
    const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', reg.host, '--files-url', nginx.url]);
    refused(r);
    assert.deepEqual(await readdir(nginx.root), []);
    const res = await request(`${nginx.url}/a`);
    await res.body.dump();
    assert.equal(res.statusCode, 404);
  });

  it('a file at falco/index.yaml: verify exits 1', async () => {
    const falco = await signedBundle('falco.tar', [['falco/index.yaml', Buffer.from('- name: planted\n')]]);
    const r = await runAirlock(['verify', falco, '--pub', pub]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /file "falco\/index\.yaml" cannot land: files\/falco\/index\.yaml is the Falco index that unpack and serve write/);
  });

  it('serve exits 1 instead of serving', async () => {
    const [listen, files] = [await freePort(), await freePort()];
    refused(await runUntilServing(['serve', bundle, '--pub', pub, '--listen', `127.0.0.1:${listen}`, '--files-listen', `127.0.0.1:${files}`]));
  });
});

/** Runs serve to its exit; if it starts serving instead (it prints its URLs), stops it and reports that as exit 0. */
function runUntilServing(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AIRLOCK, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let serving = false;
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d;
      if (!serving && /^registry /m.test(stdout)) {
        serving = true;
        child.kill('SIGTERM');
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: serving ? 0 : code, stdout, stderr }));
  });
}
