// Hostile inputs that would hang airlock or make it read without end, through
// the real CLI (issue 19, items 6-9): a FIFO or device where a bundle, a part,
// BUNDLE.sha256, a --base, a diff input or a key is expected; zeros after the
// end-of-archive marker without end (a stream, a sparse file); unsigned JSON
// too large or nested too deep to parse cheaply; a BUNDLE.sha256 that lists a
// part twice. Each run is killed after a generous time, so a hang fails the
// test instead of stalling the suite; no assertion is about time.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { appendFile, copyFile, mkdir, readFile, rm, stat, symlink, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeBlobBundle, type BlobBundle } from './support/blobbundle.js';
import { AIRLOCK } from './support/cli.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { splitInto, tarEntryBytes } from './support/tamper.js';
import { readRegular, readRegularSync } from '../src/fsx/safe.js';

let work: string;
let b: BlobBundle;
let key: string;
/** `b.bundle` cut into parts (b.tar.001, …) with its b.tar.sha256: the split cases work on copies of it. */
let partsDir: string;
const PART = 64 * 1024;
/** A run that takes longer than this hangs; killed, it fails its test. */
const HANG_MS = 30_000;

before(async () => {
  work = await makeTempDir('airlock-hostile-inputs-');
  b = await makeBlobBundle(path.join(work, 'src'), [
    { size: 150 * 1024, seed: 'one' },
    { size: 70 * 1024, seed: 'two' },
  ]);
  key = path.join(work, 'src', 'k.key');
  partsDir = path.dirname(await splitInto(b.bundle, path.join(work, 'parts'), PART));
});
after(async () => {
  await removeTempDir(work);
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
  ms: number;
}

/** Runs `argv` (the CLI unless told otherwise), killing it after HANG_MS. */
function run(args: readonly string[], argv: readonly string[] = [process.execPath, AIRLOCK]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const [cmd = '', ...rest] = [...argv, ...args];
    const child = spawn(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      // The whole group: a shell pipeline's cat too.
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    }, HANG_MS);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, timedOut, ms: Date.now() - started });
    });
  });
}

function refused(r: Run, code: number, re: RegExp): void {
  assert.equal(r.timedOut, false, `it hung (killed after ${HANG_MS} ms); stderr: ${r.stderr}`);
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, re);
}

const mkfifo = (p: string) => execFileSync('mkfifo', [p]);
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A fresh copy of the split bundle in its own folder; returns the path of b.tar (which does not exist: its parts do). */
async function copyParts(name: string): Promise<string> {
  const dir = path.join(work, name);
  await mkdir(dir);
  for (const f of execFileSync('ls', [partsDir], { encoding: 'utf8' }).split('\n').filter(Boolean)) await copyFile(path.join(partsDir, f), path.join(dir, f));
  return path.join(dir, 'b.tar');
}

describe('a FIFO or device as an input is refused at once, naming it (item 6)', () => {
  it('a FIFO as the bundle: verify, inspect, unpack and serve', async () => {
    const fifo = path.join(work, 'fifo.tar');
    mkfifo(fifo);
    await mkdir(path.join(work, 'files'));
    for (const args of [
      ['verify', fifo, '--pub', b.pub],
      ['inspect', fifo],
      ['unpack', fifo, '--pub', b.pub, '--registry', '127.0.0.1:1/x', '--files-dir', path.join(work, 'files')],
      ['serve', fifo, '--pub', b.pub, '--listen', '127.0.0.1:0', '--files-listen', '127.0.0.1:0'],
    ]) {
      refused(await run(args), 1, new RegExp(`${esc(fifo)}: the bundle is a FIFO \\(named pipe\\), not a regular file`));
    }
  });

  it('a symbolic link to a FIFO as the bundle says so', async () => {
    const fifo = path.join(work, 'fifo2');
    mkfifo(fifo);
    const link = path.join(work, 'link.tar');
    await symlink(fifo, link);
    refused(await run(['verify', link, '--pub', b.pub]), 1, /link\.tar: the bundle is a symbolic link to a FIFO \(named pipe\)/);
  });

  it('a FIFO as a part of a split bundle', async () => {
    const bundle = await copyParts('fifo-part');
    await rm(`${bundle}.002`);
    mkfifo(`${bundle}.002`);
    refused(await run(['verify', bundle, '--pub', b.pub]), 1, new RegExp(`${esc(bundle)}\\.002 is a FIFO \\(named pipe\\), not a regular file`));
  });

  it('a FIFO as BUNDLE.sha256', async () => {
    const bundle = await copyParts('fifo-sidecar');
    await rm(`${bundle}.sha256`);
    mkfifo(`${bundle}.sha256`);
    refused(await run(['verify', bundle, '--pub', b.pub]), 1, new RegExp(`${esc(bundle)}\\.sha256 is a FIFO \\(named pipe\\), not a regular file`));
  });

  it('BUNDLE.sha256 linked to /dev/zero is refused unread; one over its bound is refused naming the bound', async () => {
    const bundle = await copyParts('zero-sidecar');
    await rm(`${bundle}.sha256`);
    await symlink('/dev/zero', `${bundle}.sha256`);
    refused(await run(['verify', bundle, '--pub', b.pub]), 1, new RegExp(`${esc(bundle)}\\.sha256 is a symbolic link to a device: airlock reads only regular files`));

    const big = await copyParts('big-sidecar');
    await truncate(`${big}.sha256`, 1024 * 1024 * 1024);
    refused(await run(['verify', big, '--pub', b.pub]), 1, new RegExp(`${esc(big)}\\.sha256 is 1073741824 bytes, more than a BUNDLE\\.sha256 file may be \\(4194304 bytes\\); refusing it`));
  });

  it('a FIFO as either diff input and as a --base of build', async () => {
    const fifo = path.join(work, 'fifo-base');
    mkfifo(fifo);
    const isFifo = new RegExp(`${esc(fifo)} is a FIFO \\(named pipe\\), not a regular file`);
    refused(await run(['diff', fifo, b.bundle]), 1, isFifo);
    refused(await run(['diff', b.bundle, fifo]), 1, isFifo);
    const manifest = path.join(work, 'm.yaml');
    await writeFile(manifest, 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: x\nspec:\n  images: ["127.0.0.1:1/x/y:1"]\n');
    refused(await run(['build', manifest, '-o', path.join(work, 'out.tar'), '--key', key, '--cache', path.join(work, 'cache'), '--base', fifo]), 1, isFifo);
  });

  it('a FIFO as --pub, --key or the manifest', async () => {
    const fifo = path.join(work, 'fifo-key');
    mkfifo(fifo);
    const isFifo = new RegExp(`${esc(fifo)} is a FIFO \\(named pipe\\), not a regular file`);
    refused(await run(['verify', b.bundle, '--pub', fifo]), 1, isFifo);
    const manifest = path.join(work, 'm2.yaml');
    await writeFile(manifest, 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: x\nspec:\n  images: ["127.0.0.1:1/x/y:1"]\n');
    refused(await run(['build', manifest, '-o', path.join(work, 'out2.tar'), '--key', fifo, '--cache', path.join(work, 'cache')]), 1, isFifo);
    refused(await run(['build', fifo, '-o', path.join(work, 'out3.tar'), '--key', key, '--cache', path.join(work, 'cache')]), 2, isFifo);
  });
});

describe('zeros after the end-of-archive marker are bounded (item 7)', () => {
  /** Where the end-of-archive marker of b.bundle begins: the writer ends the file with it. */
  const markerAt = async () => (await stat(b.bundle)).size - 1024;

  it('verify - on a bundle followed by /dev/zero fails, naming the offsets', async () => {
    const r = await run([], ['sh', '-c', `cat "$1" /dev/zero | "$2" "$3" verify - --pub "$4"`, 'sh', b.bundle, process.execPath, AIRLOCK, b.pub]);
    const at = await markerAt();
    refused(r, 1, new RegExp(`standard input goes on past byte ${at + 1024 + 10240}: only the end-of-archive marker at byte ${at} and at most one 10240-byte tar record of zero padding may follow the last entry`));
    console.log(`verify - with /dev/zero appended: refused after ${r.ms} ms`);
  });

  it('a bundle with a sparse 8 GiB tail of zeros fails, naming the offsets', async () => {
    const file = path.join(work, 'sparse.tar');
    await copyFile(b.bundle, file);
    const size = (await stat(file)).size;
    await truncate(file, size + 8 * 1024 ** 3);
    const r = await run(['verify', file, '--pub', b.pub]);
    const at = await markerAt();
    refused(r, 1, new RegExp(`the bundle goes on past byte ${at + 1024 + 10240} \\(it is ${size + 8 * 1024 ** 3} bytes\\): only the end-of-archive marker at byte ${at}`));
    console.log(`verify of a bundle with an 8 GiB sparse tail: refused after ${r.ms} ms`);
  });

  it('the last part of a split bundle padded with zeros past one record fails', async () => {
    const bundle = await copyParts('padded-parts');
    const last = execFileSync('ls', [path.dirname(bundle)], { encoding: 'utf8' }).split('\n').filter((n) => /\.\d{3}$/.test(n)).sort().pop() as string;
    const lastFile = path.join(path.dirname(bundle), last);
    const lastSize = (await stat(lastFile)).size;
    assert.ok(lastSize + 10240 + 512 <= PART, 'the padded last part is still no larger than the others');
    await appendFile(lastFile, Buffer.alloc(10240 + 512));
    // BUNDLE.sha256 is made anew for the padded part: the tail rule, not the part check, is what refuses it.
    await rm(`${bundle}.sha256`);
    refused(await run(['verify', bundle, '--pub', b.pub]), 1, /the bundle goes on past byte \d+ \(it is \d+ bytes\): only the end-of-archive marker at byte \d+ and at most one 10240-byte tar record/);
  });

  it('one record of zeros after the marker (a tar writer pads no more) still verifies, from a file and from standard input', async () => {
    const file = path.join(work, 'record.tar');
    await copyFile(b.bundle, file);
    await appendFile(file, Buffer.alloc(10240));
    const f = await run(['verify', file, '--pub', b.pub]);
    assert.equal(f.code, 0, f.stderr);
    const s = await run([], ['sh', '-c', `"$2" "$3" verify - --pub "$4" < "$1"`, 'sh', file, process.execPath, AIRLOCK, b.pub]);
    assert.equal(s.code, 0, s.stderr);
    // GNU tar pads to a multiple of 10240: so does this, after the marker.
    const gnu = path.join(work, 'gnu-padded.tar');
    await copyFile(b.bundle, gnu);
    const size = (await stat(gnu)).size;
    await appendFile(gnu, Buffer.alloc(Math.ceil(size / 10240) * 10240 - size));
    const g = await run(['verify', gnu, '--pub', b.pub]);
    assert.equal(g.code, 0, g.stderr);
  });
});

describe('unsigned JSON is bounded in size and depth before it is parsed (item 8)', () => {
  const head = '{"apiVersion":"airlock/v1","kind":"Receipt","images":';
  const nested = (depth: number) => Buffer.from(`${head}${'['.repeat(depth)}${']'.repeat(depth)}}`);
  /** The byte of the 65th level: the object around is the first. */
  const tooDeepAt = (prefix: string) => prefix.length + 63;

  it('a 60 MB nested receipt is refused by its size, unread', async () => {
    const file = path.join(work, 'nested-60m.json');
    await writeFile(file, nested(30_000_000));
    const r = await run(['diff', file, b.bundle]);
    refused(r, 1, /nested-60m\.json is 60000054 bytes, more than a bundle\.json or a receipt may be \(16777216 bytes\); refusing it/);
    console.log(`diff of a 60 MB nested receipt: refused after ${r.ms} ms`);
  });

  it('a 12 MB nested receipt (under the size bound) is refused by its depth, as a diff input and a build --base', async () => {
    const file = path.join(work, 'nested-12m.json');
    await writeFile(file, nested(6_000_000));
    const r = await run(['diff', b.bundle, file]);
    refused(r, 1, new RegExp(`nested-12m\\.json starts like JSON but nests deeper than 64 levels \\(at byte ${tooDeepAt(head)}\\)`));
    console.log(`diff of a 12 MB nested receipt: refused after ${r.ms} ms`);
    const manifest = path.join(work, 'm3.yaml');
    await writeFile(manifest, 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: x\nspec:\n  images: ["127.0.0.1:1/x/y:1"]\n');
    refused(await run(['build', manifest, '-o', path.join(work, 'out4.tar'), '--key', key, '--cache', path.join(work, 'cache'), '--base', file]), 1, /nests deeper than 64 levels/);
  });

  it('an unsigned bundle whose bundle.json nests too deep: inspect refuses it', async () => {
    const file = path.join(work, 'deep-index.tar');
    const prefix = '{"schemaVersion":1,"images":';
    const deep = Buffer.from(`${prefix}${'['.repeat(1_000_000)}${']'.repeat(1_000_000)}}`);
    await writeFile(file, Buffer.concat([tarEntryBytes('bundle.json', deep), Buffer.alloc(1024)]));
    refused(await run(['inspect', file]), 1, new RegExp(`deep-index\\.tar: bundle\\.json nests deeper than 64 levels \\(at byte ${tooDeepAt(prefix)}\\)`));
  });
});

describe('BUNDLE.sha256 (item 9)', () => {
  it('a part listed twice is refused, naming the part and both lines', async () => {
    const bundle = await copyParts('twice');
    const lines = (await readFile(`${bundle}.sha256`, 'utf8')).split('\n').filter(Boolean);
    assert.ok(lines.length >= 3, 'several parts');
    // The second line again at the end, with another digest: which one is meant?
    const again = `${'0'.repeat(64)}  ${(lines[1] as string).slice(66)}`;
    await writeFile(`${bundle}.sha256`, [...lines, again].join('\n') + '\n');
    refused(await run(['verify', bundle, '--pub', b.pub]), 1, new RegExp(`b\\.tar\\.sha256 lists part b\\.tar\\.002 twice \\(lines 2 and ${lines.length + 1}\\)`));
  });
});

describe('the bounded reader (src/fsx/safe.ts)', () => {
  it('a file that says it is smaller than it is (a /proc file says 0) is read on only up to its bound', async () => {
    assert.equal((await stat('/proc/self/status')).size, 0);
    const bound = { max: 100, what: 'a status file', follow: true };
    await assert.rejects(readRegular('/proc/self/status', bound), { message: '/proc/self/status is more than a status file may be (100 bytes); refusing it' });
    assert.throws(() => readRegularSync('/proc/self/status', bound), { message: '/proc/self/status is more than a status file may be (100 bytes); refusing it' });
    assert.match((await readRegular('/proc/self/status', { ...bound, max: 1024 * 1024 })).toString(), /^Name:/);
  });

  it('without follow, a symbolic link is refused; with it, what it leads to is read', async () => {
    const file = path.join(work, 'target.txt');
    await writeFile(file, 'hello');
    const link = path.join(work, 'target-link');
    await symlink(file, link);
    await assert.rejects(readRegular(link, { max: 10, what: 'x' }), /is a symbolic link; airlock does not follow links/);
    assert.equal((await readRegular(link, { max: 10, what: 'x', follow: true })).toString(), 'hello');
    assert.equal(readRegularSync(link, { max: 10, what: 'x', follow: true }).toString(), 'hello');
    await assert.rejects(readRegular(link, { max: 4, what: 'a greeting', follow: true }), { message: `${link} is 5 bytes, more than a greeting may be (4 bytes); refusing it` });
  });
});
