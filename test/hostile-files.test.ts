// Hostile files where airlock writes, through the real CLI: symbolic links and
// FIFOs planted at every name build and unpack write (the bundle and its
// .sha256, the cache's partial file, lock and blob, files under --files-dir
// and their sidecars, --emit-config files, and the predictable temp names
// earlier versions used) never lead a write outside its folder and never
// hang. And two builds sharing one cache at the same time both succeed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { AIRLOCK, runAirlock, type CliResult } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let up: Upstream;
let proxy: TestFaultProxy;
let work: string;
let key: string;
let pub: string;
let manifest: string;

before(async () => {
  up = await startUpstream();
  proxy = await startFaultProxy(up.registry.url);
  work = await makeTempDir('airlock-hostile-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  key = path.join(work, 'k.key');
  pub = path.join(work, 'k.pub');
  manifest = path.join(work, 'm.yaml');
  await writeFile(manifest, up.manifest({ registryHost: proxy.host }));
});
after(async () => {
  await proxy?.stop();
  await up?.stop();
});

const mkfifo = (p: string) => execFileSync('mkfifo', [p]);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * Runs the CLI, killing it after `ms`: a write that followed a FIFO would block
 * forever, and this turns that into a failed assertion. `onSpawn` sees the pid at once.
 */
function runBounded(args: string[], ms: number, onSpawn?: (pid: number) => Promise<void>): Promise<CliResult & { timedOut: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AIRLOCK, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, ms);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut });
    });
    if (child.pid !== undefined && onSpawn) onSpawn(child.pid).catch(reject);
  });
}

/** A folder outside every folder airlock writes to, with one file in it that must stay as it is. */
async function outsideFolder(): Promise<{ dir: string; victim: string; check: () => Promise<void> }> {
  const dir = await makeTempDir('airlock-outside-');
  const victim = path.join(dir, 'victim');
  await writeFile(victim, 'precious\n');
  return {
    dir,
    victim,
    async check() {
      assert.equal(await readFile(victim, 'utf8'), 'precious\n', 'the file outside is unchanged');
      assert.deepEqual(await readdir(dir), ['victim'], 'nothing was created outside');
    },
  };
}

async function assertRegular(file: string): Promise<void> {
  assert.ok((await lstat(file)).isFile(), `${file} is a regular file`);
}

describe('build -o', () => {
  it('replaces links and FIFOs at the bundle, its .sha256 and the old temp names instead of writing through them', async () => {
    const dir = await makeTempDir('airlock-out-');
    const out = await outsideFolder();
    const bundle = path.join(dir, 'b.tar');
    const cache = path.join(dir, 'cache');
    await symlink(out.victim, bundle);
    await symlink(path.join(out.dir, 'sidecar'), `${bundle}.sha256`);
    // Earlier versions wrote `.b.tar.partial-<pid>` and `<that>.sha256`: plant links there for the build's own pid.
    const r = await runBounded(['build', manifest, '-o', bundle, '--key', key, '--cache', cache], 60_000, async (pid) => {
      await symlink(path.join(out.dir, 'via-partial'), path.join(dir, `.b.tar.partial-${pid}`));
      await symlink(path.join(out.dir, 'via-partial-sidecar'), path.join(dir, `.b.tar.partial-${pid}.sha256`));
    });
    assert.equal(r.timedOut, false, 'the build finished');
    assert.equal(r.code, 0, r.stderr);
    await out.check();
    await assertRegular(bundle);
    await assertRegular(`${bundle}.sha256`);
    assert.equal((await readFile(`${bundle}.sha256`, 'utf8')).trim(), `${sha256(await readFile(bundle))}  b.tar`);
    const v = await runAirlock(['verify', bundle, '--pub', pub]);
    assert.equal(v.code, 0, v.stderr);

    // FIFOs at both names: replaced, and the build does not block on them.
    await rm(bundle);
    await rm(`${bundle}.sha256`);
    mkfifo(bundle);
    mkfifo(`${bundle}.sha256`);
    const again = await runBounded(['build', manifest, '-o', bundle, '--key', key, '--cache', cache], 20_000);
    assert.equal(again.timedOut, false, 'the build did not block on a FIFO');
    assert.equal(again.code, 0, again.stderr);
    await assertRegular(bundle);
    await assertRegular(`${bundle}.sha256`);
    assert.equal((await runAirlock(['verify', bundle, '--pub', pub])).code, 0);
    await out.check();
    // Only the bundle, its sidecar, the cache and the planted links remain: no temp file.
    assert.deepEqual((await readdir(dir)).filter((n) => !n.startsWith('.b.tar.partial-')).sort(), ['b.tar', 'b.tar.sha256', 'cache']);
  });

  it('a folder where the bundle goes is refused, naming it, before anything is downloaded', async () => {
    const dir = await makeTempDir('airlock-out-');
    await mkdir(path.join(dir, 'b.tar'));
    const r = await runBounded(['build', manifest, '-o', path.join(dir, 'b.tar'), '--key', key, '--cache', path.join(dir, 'cache')], 30_000);
    assert.equal(r.code, 2);
    assert.ok(r.stderr.includes(`-o ${path.join(dir, 'b.tar')} is a folder; give the name of the bundle file to write`), r.stderr);
    assert.deepEqual(await readdir(dir), ['b.tar'], 'no cache was even made');
  });
});

describe('the cache', () => {
  const shared = () => up.sharedLayer.slice('sha256:'.length);

  it('a link or FIFO at a partial download is refused with its path, never followed or waited on; removed, the build works', async () => {
    const dir = await makeTempDir('airlock-cache-');
    const cache = path.join(dir, 'cache');
    const out = await outsideFolder();
    const partial = path.join(cache, 'partial', `sha256-${shared()}`);
    const args = ['build', manifest, '-o', path.join(dir, 'b.tar'), '--key', key, '--cache', cache];
    await mkdir(path.dirname(partial), { recursive: true });

    await symlink(out.victim, partial);
    let r = await runBounded(args, 30_000);
    assert.equal(r.timedOut, false);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${partial} is a symbolic link; airlock does not follow links where it reads or writes its own files: remove it and run again`), r.stderr);
    await out.check();

    await rm(partial);
    mkfifo(partial);
    r = await runBounded(args, 30_000);
    assert.equal(r.timedOut, false, 'the build did not block on the FIFO');
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${partial} is a FIFO (named pipe), not a regular file; remove it and run again`), r.stderr);

    // As the message says: remove it and run again. A link at the blob's final name and a dangling one
    // at its lock's are in the way too: the blob's is replaced by the rename, the lock's is refused.
    await rm(partial);
    const lock = path.join(cache, 'locks', `sha256-${shared()}`);
    await symlink(path.join(out.dir, 'via-lock'), lock);
    r = await runBounded(args, 30_000);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`${lock} is a symbolic link`), r.stderr);
    await rm(lock);

    const blob = path.join(cache, 'blobs', 'sha256', shared());
    await symlink(out.victim, blob);
    r = await runBounded(args, 30_000);
    assert.equal(r.code, 0, r.stderr);
    await assertRegular(blob);
    assert.equal(sha256(await readFile(blob)), shared());
    await out.check();
    assert.equal((await runAirlock(['verify', path.join(dir, 'b.tar'), '--pub', pub])).code, 0);
  });

  it('a link in place of one of its folders is refused', async () => {
    const dir = await makeTempDir('airlock-cache-');
    const out = await outsideFolder();
    await mkdir(path.join(dir, 'cache'));
    await symlink(out.dir, path.join(dir, 'cache', 'partial'));
    const r = await runBounded(['build', manifest, '-o', path.join(dir, 'b.tar'), '--key', key, '--cache', path.join(dir, 'cache')], 30_000);
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`cache folder ${path.join(dir, 'cache', 'partial')} is a symbolic link; remove it (airlock makes it) or use another --cache`), r.stderr);
    await out.check();
  });

  it('two builds on one cache at the same time both succeed; the one that waited fetches nothing twice', async () => {
    const dir = await makeTempDir('airlock-twobuilds-');
    const cache = path.join(dir, 'cache');
    proxy.stats.reset();
    // The shared layer stalls a while in whichever build fetches it, so the other one finds it locked.
    proxy.addRule({ kind: 'stall', afterBytes: 50_000, ms: 3_000, match: new RegExp(`/blobs/${up.sharedLayer}`) });
    try {
      const [a, b] = await Promise.all(['a', 'b'].map((n) => runBounded(['build', manifest, '-o', path.join(dir, `${n}.tar`), '--key', key, '--cache', cache], 90_000)));
      assert.equal(a?.code, 0, a?.stderr);
      assert.equal(b?.code, 0, b?.stderr);
      for (const n of ['a', 'b']) {
        const v = await runAirlock(['verify', path.join(dir, `${n}.tar`), '--pub', pub]);
        assert.equal(v.code, 0, v.stderr);
      }
      const waited = `${a?.stderr ?? ''}${b?.stderr ?? ''}`;
      assert.match(waited, /another airlock \(pid \d+\) is fetching it into the same cache; waiting for it/);
      let sent = 0;
      for (const [p, n] of proxy.stats.bytesByPath) if (p.endsWith(`/blobs/${up.sharedLayer}`)) sent += n;
      const bj = JSON.parse(execFileSync('tar', ['-xOf', path.join(dir, 'a.tar'), 'bundle.json']).toString('utf8')) as { blobs: Array<{ digest: string; size: number }> };
      assert.equal(sent, bj.blobs.find((x) => x.digest === up.sharedLayer)?.size, 'the shared layer crossed the wire once');
      assert.deepEqual(await readdir(path.join(cache, 'partial')), []);
      assert.deepEqual(await readdir(path.join(cache, 'locks')), []);
    } finally {
      proxy.clearRules();
    }
  });
});

describe('unpack --files-dir and --emit-config', () => {
  let target: TestRegistry;
  let bundle: string;
  let index: { files: Array<{ path: string; sha256: string }> };
  before(async () => {
    target = await startRegistry();
    const dir = await makeTempDir('airlock-unpack-hostile-');
    bundle = path.join(dir, 'b.tar');
    const b = await runAirlock(['build', manifest, '-o', bundle, '--key', key, '--cache', path.join(dir, 'cache')]);
    assert.equal(b.code, 0, b.stderr);
    index = JSON.parse(execFileSync('tar', ['-xOf', bundle, 'bundle.json']).toString('utf8')) as typeof index;
  });
  after(async () => target?.stop());

  it('replaces links and FIFOs at files, sidecars, the falco index, config files and the old temp names; nothing outside changes', async () => {
    const files = await makeTempDir('airlock-files-');
    const cfg = await makeTempDir('airlock-cfg-');
    const out = await outsideFolder();
    const paths = index.files.map((f) => f.path);
    assert.ok(paths.length >= 3);
    let n = 0;
    const plantLink = async (p: string) => symlink(path.join(out.dir, `via-${n++}`), p);
    const planted: string[] = [];
    for (const [i, rel] of [...paths, 'falco/index.yaml'].entries()) {
      const full = path.join(files, ...rel.split('/'));
      await mkdir(path.dirname(full), { recursive: true });
      // Alternate: a link to the file outside or a FIFO at the name; the other at the sidecar; both at the old temp names.
      if (i % 2 === 0) {
        await symlink(out.victim, full);
        mkfifo(`${full}.sha256`);
      } else {
        mkfifo(full);
        await symlink(out.victim, `${full}.sha256`);
      }
      await plantLink(`${full}.airlock-partial`);
      await plantLink(`${full}.sha256.airlock-partial`);
      planted.push(full);
    }
    const configs = ['welkin/common-config.yaml', 'welkin/sc-config.yaml', 'kubespray/containerd-mirrors.yaml'];
    for (const [i, rel] of configs.entries()) {
      const full = path.join(cfg, ...rel.split('/'));
      await mkdir(path.dirname(full), { recursive: true });
      if (i % 2 === 0) await symlink(out.victim, full);
      else mkfifo(full);
      await plantLink(`${full}.airlock-partial`);
    }

    const r = await runBounded(
      ['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', files, '--fileserver-url', 'http://files.internal', '--emit-config', cfg],
      60_000,
    );
    assert.equal(r.timedOut, false, 'unpack did not block on a FIFO');
    assert.equal(r.code, 0, r.stderr);
    await out.check();
    for (const f of index.files) {
      const full = path.join(files, ...f.path.split('/'));
      await assertRegular(full);
      await assertRegular(`${full}.sha256`);
      assert.equal(sha256(await readFile(full)), f.sha256, f.path);
    }
    await assertRegular(path.join(files, 'falco', 'index.yaml'));
    assert.ok(parseYaml(await readFile(path.join(files, 'falco', 'index.yaml'), 'utf8')));
    for (const rel of configs) {
      const full = path.join(cfg, ...rel.split('/'));
      await assertRegular(full);
      assert.ok(parseYaml(await readFile(full, 'utf8')), rel);
    }
    // No temp file of this run is left in either folder.
    const leftovers = (await readdir(files, { recursive: true })).concat(await readdir(cfg, { recursive: true })).filter((p) => p.endsWith('.airlock-tmp'));
    assert.deepEqual(leftovers, []);
  });

  it('a link in --emit-config to a folder elsewhere is refused, naming it; nothing is written there', async () => {
    const cfg = await makeTempDir('airlock-cfg-');
    const out = await outsideFolder();
    await symlink(out.dir, path.join(cfg, 'welkin'));
    const r = await runBounded(['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', await makeTempDir('airlock-files-'), '--emit-config', cfg], 60_000);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /config file welkin\/common-config\.yaml would be written (under|to) .*, outside .* \(a symbolic link in the folder\?\); refusing/);
    await out.check();
  });
});
