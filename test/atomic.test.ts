// src/fsx: atomic writes, no-follow opens and lock files, on real files with
// real symbolic links, FIFOs and processes. Every case is bounded in time: a
// write that followed a FIFO would hang, and the timeout turns that into a failure.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { constants } from 'node:fs';
import { lstat, mkdir, readFile, readdir, readlink, realpath, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createAtomic, withAtomic, writeAtomic } from '../src/fsx/atomic.js';
import { acquireLock } from '../src/fsx/lock.js';
import { openRegular, readRegular, resolveInside, UnsafeFileError } from '../src/fsx/safe.js';
import { makeTempDir } from './support/proc.js';

const T = { timeout: 5_000 };
const mkfifo = (p: string) => execFileSync('mkfifo', [p]);

/** A folder to write in and one outside it holding a file that must not change. */
async function setup(): Promise<{ dir: string; outside: string; victim: string }> {
  const dir = await makeTempDir('airlock-atomic-');
  const outside = await makeTempDir('airlock-outside-');
  const victim = path.join(outside, 'victim');
  await writeFile(victim, 'precious\n');
  return { dir, outside, victim };
}

async function assertOutsideUntouched(outside: string, victim: string): Promise<void> {
  assert.equal(await readFile(victim, 'utf8'), 'precious\n', 'the file outside is unchanged');
  assert.deepEqual(await readdir(outside), [path.basename(victim)], 'nothing was created outside');
}

describe('atomic writes', () => {
  it('a file written in many pieces, flushed in the background as it grows, commits every byte in order; an abort leaves nothing', T, async () => {
    const { dir } = await setup();
    const file = path.join(dir, 'big.bin');
    const piece = Buffer.alloc(1024 * 1024);
    const whole = createHash('sha256');
    const f = await createAtomic(file);
    // 80 MiB: past the background flush's step (32 MiB) twice, with writes going on while a flush runs.
    for (let i = 0; i < 80; i++) {
      piece.fill(i);
      whole.update(piece);
      await f.write(piece);
    }
    await f.commit();
    assert.equal(createHash('sha256').update(await readFile(file)).digest('hex'), whole.digest('hex'));
    const g = await createAtomic(path.join(dir, 'cut.bin'));
    for (let i = 0; i < 40; i++) await g.write(piece);
    await g.abort();
    assert.deepEqual(await readdir(dir), ['big.bin'], 'no temp file left');
  });

  it('replace a symbolic link at the final name instead of writing through it', T, async () => {
    const { dir, outside, victim } = await setup();
    const file = path.join(dir, 'out.txt');
    await symlink(victim, file);
    await writeAtomic(file, 'new\n');
    assert.ok((await lstat(file)).isFile(), 'the name now holds a regular file');
    assert.equal(await readFile(file, 'utf8'), 'new\n');
    await assertOutsideUntouched(outside, victim);
    assert.deepEqual(await readdir(dir), ['out.txt'], 'no temp file left');
  });

  it('replace a dangling link without creating its target', T, async () => {
    const { dir, outside, victim } = await setup();
    const file = path.join(dir, 'out.txt');
    await symlink(path.join(outside, 'created'), file);
    await writeAtomic(file, 'new\n');
    assert.ok((await lstat(file)).isFile());
    await assertOutsideUntouched(outside, victim);
  });

  it('replace a FIFO at the final name without blocking on it', T, async () => {
    const { dir } = await setup();
    const file = path.join(dir, 'out.txt');
    mkfifo(file);
    await writeAtomic(file, 'new\n');
    assert.ok((await lstat(file)).isFile());
    assert.equal(await readFile(file, 'utf8'), 'new\n');
  });

  it('refuse a folder at the final name, naming it, before writing anything', T, async () => {
    const { dir } = await setup();
    const file = path.join(dir, 'out.txt');
    await mkdir(file);
    await assert.rejects(createAtomic(file), (err: Error) => err instanceof UnsafeFileError && err.message.includes(file) && /is a folder/.test(err.message));
    assert.deepEqual(await readdir(dir), ['out.txt']);
  });

  it('write to a hidden temp beside the name, random each time, mode 0644, moved into place on commit', T, async () => {
    const { dir } = await setup();
    const file = path.join(dir, 'bundle.tar');
    const a = await createAtomic(file);
    const b = await createAtomic(file);
    try {
      assert.equal(path.dirname(a.tmp), dir);
      assert.notEqual(a.tmp, b.tmp);
      assert.match(path.basename(a.tmp), /^\.bundle\.tar\.[0-9a-f]{12}\.airlock-tmp$/);
      const mode = (await lstat(a.tmp)).mode & 0o777;
      assert.equal(mode, 0o644 & ~process.umask());
      // Streaming through the handle (the tar writer's way) and through write().
      await a.handle.write(Buffer.from('one '));
      await b.write(Buffer.from('two'));
      await a.commit();
      assert.equal(await readFile(file, 'utf8'), 'one ');
      await b.abort();
      await b.abort();
      assert.deepEqual(await readdir(dir), ['bundle.tar'], 'the aborted temp is gone');
    } finally {
      await a.abort();
      await b.abort();
    }
  });

  it('leave the old file and no temp behind when the writer fails', T, async () => {
    const { dir } = await setup();
    const file = path.join(dir, 'f');
    await writeFile(file, 'old');
    await assert.rejects(
      withAtomic(file, async (f) => {
        await f.write(Buffer.from('half'));
        throw new Error('network gone');
      }),
      /network gone/,
    );
    assert.equal(await readFile(file, 'utf8'), 'old');
    assert.deepEqual(await readdir(dir), ['f']);
  });
});

describe('openRegular', () => {
  it('refuses a symbolic link, naming it and saying to remove it', T, async () => {
    const { dir, outside, victim } = await setup();
    const file = path.join(dir, 'partial');
    await symlink(victim, file);
    await assert.rejects(openRegular(file, constants.O_RDWR | constants.O_CREAT), (err: Error) => err.message === `${file} is a symbolic link; airlock does not follow links where it reads or writes its own files: remove it and run again`);
    await assertOutsideUntouched(outside, victim);
    assert.equal(await readlink(file), victim, 'the link is left for the person to look at');
  });

  it('refuses a FIFO at once, for writing and for reading', T, async () => {
    const { dir } = await setup();
    const file = path.join(dir, 'partial');
    mkfifo(file);
    for (const flags of [constants.O_RDWR | constants.O_CREAT, constants.O_WRONLY, constants.O_RDONLY]) {
      await assert.rejects(openRegular(file, flags), (err: Error) => err.message === `${file} is a FIFO (named pipe), not a regular file; remove it and run again`);
    }
    await assert.rejects(readRegular(file), /is a FIFO/);
  });

  it('opens and creates regular files', T, async () => {
    const { dir } = await setup();
    const fh = await openRegular(path.join(dir, 'new'), constants.O_RDWR | constants.O_CREAT);
    await fh.write('x');
    await fh.close();
    assert.equal((await readRegular(path.join(dir, 'new'))).toString(), 'x');
  });
});

describe('resolveInside', () => {
  it('refuses a path through a link to a folder elsewhere, creating nothing there', T, async () => {
    const { dir, outside, victim } = await setup();
    await symlink(outside, path.join(dir, 'sub'));
    await assert.rejects(resolveInside(dir, 'sub/deeper/f.yaml', { create: true, what: 'config file sub/deeper/f.yaml' }), /config file sub\/deeper\/f\.yaml would be written under .*, outside .* \(a symbolic link in the folder\?\); refusing/);
    await assertOutsideUntouched(outside, victim);
    assert.equal(await resolveInside(dir, 'a/b/c', { create: true, what: 'x' }), path.join(await realpath(dir), 'a', 'b', 'c'));
  });
});

describe('lock files', () => {
  it('serialize holders inside one process', T, async () => {
    const { dir } = await setup();
    const file = path.join(dir, 'k');
    const order: string[] = [];
    const first = await acquireLock(file);
    assert.equal((await readFile(file, 'utf8')).trim(), String(process.pid));
    const second = acquireLock(file).then((l) => (order.push('second'), l));
    await new Promise((r) => setTimeout(r, 100));
    order.push('first releases');
    await first.release();
    await (await second).release();
    assert.deepEqual(order, ['first releases', 'second']);
    assert.deepEqual(await readdir(dir), [], 'released locks are removed');
  });

  it('wait while another live process holds the lock, and take it when that process is gone', T, async () => {
    const { dir } = await setup();
    const file = path.join(dir, 'k');
    const other = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await writeFile(file, `${other.pid}\n`);
      const waits: number[] = [];
      let got = false;
      const p = acquireLock(file, { onWait: (pid) => waits.push(pid) }).then((l) => ((got = true), l));
      await new Promise((r) => setTimeout(r, 400));
      assert.equal(got, false, 'still waiting while the owner lives');
      assert.deepEqual(waits, [other.pid]);
      other.kill('SIGKILL');
      await once(other, 'exit');
      const lock = await p;
      assert.equal((await readFile(file, 'utf8')).trim(), String(process.pid));
      await lock.release();
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('take over a lock left by a dead process at once', T, async () => {
    const { dir } = await setup();
    const file = path.join(dir, 'k');
    const dead = spawn('true', { stdio: 'ignore' });
    await once(dead, 'exit');
    await writeFile(file, `${dead.pid}\n`);
    const waits: number[] = [];
    const lock = await acquireLock(file, { onWait: (pid) => waits.push(pid) });
    assert.deepEqual(waits, []);
    await lock.release();
  });

  it('refuse a link or FIFO planted at the lock name', T, async () => {
    const { dir, outside, victim } = await setup();
    const link = path.join(dir, 'link');
    await symlink(victim, link);
    await assert.rejects(acquireLock(link), /link is a symbolic link; .*remove it/);
    const fifo = path.join(dir, 'fifo');
    mkfifo(fifo);
    await assert.rejects(acquireLock(fifo), /fifo is a FIFO \(named pipe\), not a regular file; remove it/);
    await assertOutsideUntouched(outside, victim);
  });
});
