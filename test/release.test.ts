// release/airlock.mjs (SPEC §8): one file that runs with no node_modules and
// behaves like bin/airlock. Built here the way `npm run release` builds it (the
// single executable is left to CI's scripts/release-check.ts: it copies a
// 120 MiB Node binary and takes half a minute), into a folder outside the
// checkout with no node_modules above it. Last, what keeps every way to run
// airlock quick to start: --version and --help load none of the commands' libraries.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundle } from '../scripts/release/bundle.js';
import { assertNoNodeModulesAbove, checkout, mjs, runWith, type Runner } from '../scripts/release/runners.js';
import { makeTempDir } from './support/proc.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const root = path.resolve(import.meta.dirname, '..');
let up: Upstream;
let dir: string;
let file: Runner;

before(async () => {
  dir = await makeTempDir('airlock-release-');
  assertNoNodeModulesAbove(dir);
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
  await writeFile(path.join(dir, 'airlock.mjs'), await bundle({ root, version: pkg.version }, 'esm'));
  file = mjs(dir);
  up = await startUpstream();
  const ok = async (args: string[]) => {
    const r = await runWith(checkout, args, { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
  };
  await ok(['keygen', '--out', 'k']);
  await writeFile(path.join(dir, 'm.yaml'), up.manifest());
  await ok(['build', 'm.yaml', '-o', 'b.tar', '--key', 'k.key', '--cache', 'cache']);
});
after(async () => up?.stop());

/** The same command with bin/airlock and with airlock.mjs, in the same folder. */
async function both(args: string[], stdin?: string) {
  const opts = { cwd: dir, ...(stdin !== undefined && { stdin }) };
  return { want: await runWith(checkout, args, opts), got: await runWith(file, args, opts) };
}

it('airlock.mjs is one file that imports nothing but Node’s own modules', async () => {
  const text = await readFile(path.join(dir, 'airlock.mjs'), 'utf8');
  assert.match(text, /^#!\/usr\/bin\/env node\n/);
  // Import statements start a line or follow a semicolon; `from "…"` inside strings (commander's help texts) does not count.
  const specifiers = [...text.matchAll(/(?:^|;)import\s*(?:[\w$\s{},*]*?from\s*)?["']([^"']+)["']/gm)].map((m) => m[1]);
  assert.ok(specifiers.length > 0);
  for (const s of specifiers) assert.match(s ?? '', /^node:/, `imports ${s}`);
});

it('--version, --help and a command’s help are bin/airlock’s', async () => {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const v = await both(['--version']);
  assert.equal(v.got.code, 0, v.got.stderr);
  assert.equal(v.got.stdout, `${pkg.version}\n`);
  for (const args of [['--help'], ['build', '--help'], ['unpack', '--help']]) {
    const h = await both(args);
    assert.deepEqual(h.got, h.want, args.join(' '));
  }
});

it('verify and inspect of a bundle give what bin/airlock gives, with no node_modules reachable', async () => {
  for (const args of [['verify', 'b.tar', '--pub', 'k.pub', '--json'], ['verify', 'b.tar', '--pub', 'k.pub'], ['inspect', 'b.tar', '--json'], ['inspect', 'b.tar']]) {
    const r = await both(args);
    assert.equal(r.got.code, 0, `${args.join(' ')}: ${r.got.stderr}`);
    assert.equal(r.got.stdout, r.want.stdout, args.join(' '));
  }
  const report = JSON.parse((await runWith(file, ['verify', 'b.tar', '--pub', 'k.pub', '--json'], { cwd: dir })).stdout) as { ok: boolean; images: number };
  assert.deepEqual([report.ok, report.images], [true, 7]);
});

it('errors keep their messages and exit codes: a bad manifest (schema inside the file), a bundle cut short, a missing flag', async () => {
  await writeFile(path.join(dir, 'bad.yaml'), 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: x\nspec:\n  imagez: []\n');
  const bad = await both(['build', 'bad.yaml', '--dry-run']);
  assert.equal(bad.got.code, 2);
  assert.match(bad.got.stderr, /unknown key "imagez"; did you mean "images"\?/);
  assert.deepEqual(bad.got, bad.want);

  const whole = await readFile(path.join(dir, 'b.tar'));
  await writeFile(path.join(dir, 'short.tar'), whole.subarray(0, whole.length - 50_000));
  const t = await both(['verify', 'short.tar', '--pub', 'k.pub']);
  assert.equal(t.got.code, 1);
  assert.equal(t.got.stderr.split('\n').filter((l) => l.startsWith('airlock verify:')).join('\n'), t.want.stderr.split('\n').filter((l) => l.startsWith('airlock verify:')).join('\n'));
  assert.match(t.got.stderr, /^airlock verify: .*short\.tar/m);

  const usage = await both(['unpack', 'b.tar', '--pub', 'k.pub']);
  assert.equal(usage.got.code, 2);
  assert.deepEqual(usage.got, usage.want);
});

it('an older Node is told it is too old, in one line, before anything else runs', async (t) => {
  // The machine's own node, when it is below the floor (^22.22.2 || >=24.15; Debian's is); airlock.mjs must say so itself.
  const old = ['/usr/bin/node', '/usr/local/bin/node'].find((n) => {
    if (!existsSync(n)) return false;
    const [major = 0, minor = 0, patch = 0] = execFileSync(n, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim().split('.').map(Number);
    return !(major > 24 || (major === 24 && minor >= 15) || (major === 22 && (minor > 22 || (minor === 22 && patch >= 2))));
  });
  if (!old) return t.skip('no Node below 22.22.2 / 24.15 on this machine');
  const r = await runWith({ name: 'old node', argv: [old, path.join(dir, 'airlock.mjs')], env: { PATH: '/usr/bin:/bin' } }, ['--version'], { cwd: dir });
  assert.equal(r.code, 1);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^airlock needs Node\.js 22\.22\.2 or newer on 22, or 24\.15 or newer \(24 LTS recommended\); this is v\d+\.\d+\.\d+\. .*airlock-linux-x64/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
});

it('bin/airlock --version and --help load no library that only a command needs', async () => {
  // A load hook in the process itself lists every module it loads.
  const hook = `data:text/javascript,${encodeURIComponent(
    "import { registerHooks } from 'node:module'; import { appendFileSync } from 'node:fs';" +
      'registerHooks({ load(url, context, next) { appendFileSync(process.env.AIRLOCK_LOADED_LOG, url + "\\n"); return next(url, context); } });',
  )}`;
  for (const args of [['--version'], ['--help']]) {
    const log = path.join(dir, `loaded-${args[0]}.log`);
    const r = await runWith({ name: 'hooked', argv: [process.execPath, '--import', hook, path.join(root, 'bin', 'airlock')], env: { ...process.env, AIRLOCK_LOADED_LOG: log } }, args, { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const loaded = (await readFile(log, 'utf8')).trim().split('\n');
    assert.ok(loaded.some((u) => u.includes('/dist/cli/version.js')), 'the hook saw the version module load');
    // --version alone is answered before the command line is wired up; --help needs commander.
    const commander = loaded.some((u) => u.includes('/node_modules/commander/'));
    assert.equal(commander, args[0] === '--help', `commander loaded for ${args[0]}: ${commander}`);
    const heavy = loaded.filter((u) => /\/node_modules\/(undici|ajv|yaml|@noble|tldts|tar-stream|p-limit)\//.test(u));
    assert.deepEqual(heavy, [], args.join(' '));
    assert.deepEqual(loaded.filter((u) => u.includes('/dist/cli/actions/')), [], args.join(' '));
  }
});

it('bin/airlock keeps Node’s compile cache in the user’s cache folder, and NODE_DISABLE_COMPILE_CACHE turns it off', async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), 'airlock-xdg-'));
  try {
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: home };
    delete env.NODE_COMPILE_CACHE;
    const off = await runWith({ name: 'no cache', argv: [process.execPath, path.join(root, 'bin', 'airlock')], env: { ...env, NODE_DISABLE_COMPILE_CACHE: '1' } }, ['--help'], { cwd: dir });
    assert.equal(off.code, 0, off.stderr);
    assert.equal(existsSync(path.join(home, 'airlock', 'node-compile-cache')), false);
    const on = await runWith({ name: 'cache', argv: [process.execPath, path.join(root, 'bin', 'airlock')], env }, ['--help'], { cwd: dir });
    assert.equal(on.code, 0, on.stderr);
    assert.equal(on.stdout, off.stdout);
    // One folder per Node version, holding the compiled code of the modules the run loaded.
    const [versionDir, ...others] = await readdir(path.join(home, 'airlock', 'node-compile-cache'));
    assert.ok(versionDir && versionDir.startsWith(process.version), String(versionDir));
    assert.deepEqual(others, []);
    assert.ok((await readdir(path.join(home, 'airlock', 'node-compile-cache', versionDir))).length > 10);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

it('airlock.mjs keeps its command code in the user’s cache folder, checked against the digest inside before it runs', { timeout: 60_000 }, async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), 'airlock-xdg-'));
  try {
    const env = { XDG_CACHE_HOME: home };
    const want = await runWith(checkout, ['inspect', 'b.tar'], { cwd: dir });
    const first = await runWith(file, ['inspect', 'b.tar'], { cwd: dir, env });
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.stdout, want.stdout);
    const folder = path.join(home, 'airlock', 'release');
    const [name, ...others] = await readdir(folder);
    assert.deepEqual(others, []);
    assert.match(name ?? '', /^[0-9a-f]{64}\.cjs$/);
    const copy = path.join(folder, name ?? '');
    const digest = async () => createHash('sha256').update(await readFile(copy)).digest('hex');
    assert.equal(`${await digest()}.cjs`, name);
    assert.ok((await readdir(path.join(home, 'airlock', 'node-compile-cache'))).length > 0, 'compile cache kept');

    // A copy changed behind its back is never run: it is written anew from the file itself.
    await writeFile(copy, 'process.exit(42);\n');
    const second = await runWith(file, ['inspect', 'b.tar'], { cwd: dir, env });
    assert.equal(second.code, 0, second.stderr);
    assert.equal(second.stdout, want.stdout);
    assert.equal(`${await digest()}.cjs`, name);

    // No cache folder to be had (a path under /proc, where Node's own recursive mkdir never returns): run from memory.
    const nowhere = await runWith(file, ['inspect', 'b.tar'], { cwd: dir, env: { XDG_CACHE_HOME: '/proc/airlock-no-such-folder' } });
    assert.equal(nowhere.code, 0, nowhere.stderr);
    assert.equal(nowhere.stdout, want.stdout);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

it('a cache folder others can write, or a link in its place, holds no code of airlock’s: neither the command code nor the compile cache', { timeout: 60_000 }, async () => {
  const home = await mkdtemp(path.join(os.tmpdir(), 'airlock-xdg-'));
  try {
    const env = { XDG_CACHE_HOME: home };
    const release = path.join(home, 'airlock', 'release');
    const compiled = path.join(home, 'airlock', 'node-compile-cache');
    await mkdir(release, { recursive: true, mode: 0o700 });
    await mkdir(compiled, { mode: 0o700 });
    await chmod(release, 0o777);
    await chmod(compiled, 0o770);
    const want = await runWith(checkout, ['inspect', 'b.tar'], { cwd: dir });
    const got = await runWith(file, ['inspect', 'b.tar'], { cwd: dir, env });
    assert.equal(got.code, 0, got.stderr);
    assert.equal(got.stdout, want.stdout);
    assert.equal(got.stderr, want.stderr);
    assert.deepEqual(await readdir(release), [], 'no copy of the command code where others can write');
    assert.deepEqual(await readdir(compiled), [], 'no compiled code where others can write');
    const binEnv: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: home };
    delete binEnv.NODE_COMPILE_CACHE;
    const help = await runWith({ name: 'bin', argv: checkout.argv, env: binEnv }, ['--help'], { cwd: dir });
    assert.equal(help.code, 0, help.stderr);
    assert.deepEqual(await readdir(compiled), [], 'bin/airlock keeps no compile cache there either');

    // The release folder a link to someone else's folder: nothing written there, nothing removed.
    const elsewhere = path.join(home, 'elsewhere');
    await mkdir(elsewhere, { mode: 0o700 });
    const theirs = [`${'a'.repeat(64)}.cjs`, 'tool.cjs'];
    for (const n of theirs) await writeFile(path.join(elsewhere, n), 'theirs\n');
    await rm(release, { recursive: true });
    await symlink(elsewhere, release);
    const linked = await runWith(file, ['inspect', 'b.tar'], { cwd: dir, env });
    assert.equal(linked.code, 0, linked.stderr);
    assert.equal(linked.stdout, want.stdout);
    assert.deepEqual((await readdir(elsewhere)).sort(), theirs.sort());
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

it('bin/airlock starts, and build says which cache folder it cannot make, where Node’s own recursive mkdir would spin forever', { timeout: 60_000 }, async () => {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_CACHE_HOME: '/proc/airlock-no-such-folder' };
  delete env.NODE_COMPILE_CACHE;
  const help = await runWith({ name: 'bin', argv: checkout.argv, env }, ['--help'], { cwd: dir });
  assert.equal(help.code, 0, help.stderr);
  const built = await runWith({ name: 'bin', argv: checkout.argv, env }, ['build', 'm.yaml', '-o', 'x.tar', '--key', 'k.key', '--cache', '/proc/airlock-no-such-folder/cache'], { cwd: dir });
  assert.equal(built.code, 1);
  assert.match(built.stderr, /^airlock build: cache folder \/proc\/airlock-no-such-folder\/cache\/\S+ cannot be made: ENOENT.*; use another --cache\n$/);
  assert.equal(existsSync(path.join(dir, 'x.tar')), false);
});
