// The release files' loader (scripts/release/cached.ts) on real folders: the
// copy of the command code in the user's cache folder is run only from a
// folder nobody else can write, only when it is this user's regular file,
// and what runs is the very bytes that were hashed. test/release.test.ts runs
// the whole release file over the same rules.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { chmod, chown, lstat, mkdir, readdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, it } from 'node:test';
import { compileCommonJs, fromCacheFolder, removeOldCopies } from '../scripts/release/cached.js';
import { makeTempDir, removeTempDir } from './support/proc.js';

const good = Buffer.from('module.exports = { answer: 42 };\n');
const evil = Buffer.from('module.exports = { answer: 666 };\n');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const copyName = `${sha(good)}.cjs`;
/** Another user than the one running the tests, for files that must not count as ours. */
const OTHER_UID = 4242;
const uid = process.getuid?.() ?? 0;

let home: string;
let decompressed: number;

beforeEach(async () => {
  home = await makeTempDir('airlock-release-cache-');
  decompressed = 0;
});
afterEach(async () => {
  await chmod(home, 0o700).catch(() => undefined);
  await removeTempDir(home);
});

function load(dir: string, compile = (text: string, file: string) => compileCommonJs(text, file) as { answer: number }) {
  return fromCacheFolder({
    dir,
    sha256: sha(good),
    source: () => {
      decompressed += 1;
      return good;
    },
    compile,
  });
}

it('a private folder gets the copy (this user’s, 0600), and the next run compiles it from there without the source', async () => {
  const dir = path.join(home, 'airlock', 'release');
  assert.deepEqual(await load(dir), { answer: 42 });
  assert.equal(decompressed, 1);
  const s = await lstat(path.join(dir, copyName));
  assert.deepEqual([s.isFile(), s.uid, s.mode & 0o777], [true, uid, 0o600]);
  assert.equal((await lstat(dir)).mode & 0o777, 0o700);
  assert.deepEqual(await load(dir), { answer: 42 });
  assert.equal(decompressed, 1, 'the second run used the copy');
});

it('a folder that a group or others can write, or under such a folder, is not used: the source runs from memory', async () => {
  const open = path.join(home, 'open');
  await mkdir(open, { mode: 0o700 });
  await chmod(open, 0o770);
  // Someone in the group planted the copy's name with other code.
  await writeFile(path.join(open, copyName), evil);
  assert.equal(await load(open), undefined);
  assert.deepEqual(await readFile(path.join(open, copyName)), evil, 'nothing written there either');

  const parent = path.join(home, 'parent');
  await mkdir(path.join(parent, 'release'), { recursive: true, mode: 0o700 });
  await chmod(parent, 0o777);
  assert.equal(await load(path.join(parent, 'release')), undefined, 'whoever can write the folder above can swap this one');
  assert.deepEqual(await readdir(path.join(parent, 'release')), []);
});

it('a folder owned by another user is not used', async (t) => {
  if (uid !== 0) return t.skip('needs root to hand a folder to another user');
  const theirs = path.join(home, 'theirs');
  await mkdir(theirs, { mode: 0o700 });
  await chown(theirs, OTHER_UID, OTHER_UID);
  assert.equal(await load(theirs), undefined);
  assert.deepEqual(await readdir(theirs), []);
});

it('a folder that is a symbolic link is not followed: nothing is written or removed where it points', async () => {
  const elsewhere = path.join(home, 'elsewhere');
  await mkdir(elsewhere, { mode: 0o700 });
  const someoneElses = { [`${'a'.repeat(64)}.cjs`]: 'theirs\n', 'notes.cjs': 'theirs too\n' };
  for (const [name, text] of Object.entries(someoneElses)) await writeFile(path.join(elsewhere, name), text);
  const link = path.join(home, 'release');
  await symlink(elsewhere, link);
  assert.equal(await load(link), undefined);
  assert.deepEqual((await readdir(elsewhere)).sort(), Object.keys(someoneElses).sort());
});

it('a copy owned by another user is not run, even with the right bytes: it is replaced by this user’s', async (t) => {
  if (uid !== 0) return t.skip('needs root to hand a file to another user');
  const dir = path.join(home, 'release');
  await mkdir(dir, { mode: 0o700 });
  await writeFile(path.join(dir, copyName), good);
  await chown(path.join(dir, copyName), OTHER_UID, OTHER_UID);
  assert.deepEqual(await load(dir), { answer: 42 });
  assert.equal(decompressed, 1, 'their copy was not read');
  assert.equal((await lstat(path.join(dir, copyName))).uid, uid);
});

it('a link or a FIFO in the copy’s place is neither followed nor waited on: the copy is written anew', async () => {
  const dir = path.join(home, 'release');
  await mkdir(dir, { mode: 0o700 });
  const target = path.join(home, 'target.cjs');
  await writeFile(target, good);
  await symlink(target, path.join(dir, copyName));
  assert.deepEqual(await load(dir), { answer: 42 });
  assert.equal(decompressed, 1, 'the link was not read');
  assert.ok((await lstat(path.join(dir, copyName))).isFile());

  await rm(path.join(dir, copyName));
  execFileSync('mkfifo', [path.join(dir, copyName)]);
  assert.deepEqual(await load(dir), { answer: 42 });
  assert.equal(decompressed, 2);
  assert.ok((await lstat(path.join(dir, copyName))).isFile());
});

it('a copy swapped right after it was checked is not what runs: the bytes hashed are the bytes compiled', async () => {
  const dir = path.join(home, 'release');
  assert.deepEqual(await load(dir), { answer: 42 });
  const file = path.join(dir, copyName);
  // Between the check and the compile, the file at the path gets other code: what
  // the loader compiles must not come from the path again.
  const got = await load(dir, (text, name) => {
    assert.equal(name, file);
    writeFileSync(file, evil);
    return compileCommonJs(text, name) as { answer: number };
  });
  assert.deepEqual(got, { answer: 42 });
  assert.equal(decompressed, 1, 'the checked copy was used, not the source');
  assert.deepEqual(await readFile(file), evil, 'the swap did happen');
  // The next run finds the changed copy, does not run it, and writes it anew.
  assert.deepEqual(await load(dir), { answer: 42 });
  assert.equal(decompressed, 2);
  assert.deepEqual(await readFile(file), good);
});

it('clean-up removes only this user’s regular files named like a copy', async (t) => {
  const dir = path.join(home, 'release');
  await mkdir(dir, { mode: 0o700 });
  const old = `${'b'.repeat(64)}.cjs`;
  const kept = {
    theirs: `${'c'.repeat(64)}.cjs`,
    notACopy: 'airlock.cjs',
    upper: `${'D'.repeat(64)}.cjs`,
    other: 'notes.txt',
    link: `${'e'.repeat(64)}.cjs`,
    folder: `${'f'.repeat(64)}.cjs`,
  };
  for (const name of [old, kept.theirs, kept.notACopy, kept.upper, kept.other]) await writeFile(path.join(dir, name), 'x\n');
  const outside = path.join(home, 'outside.cjs');
  await writeFile(outside, 'not in the folder\n');
  await symlink(outside, path.join(dir, kept.link));
  await mkdir(path.join(dir, kept.folder));
  if (uid === 0) await chown(path.join(dir, kept.theirs), OTHER_UID, OTHER_UID);
  else t.diagnostic('not root: the other user’s file is this user’s here, and is removed');

  removeOldCopies(dir, copyName);
  const left = (await readdir(dir)).sort();
  assert.equal(left.includes(old), false, 'an earlier copy of this user’s is removed');
  const want = Object.values(kept).filter((n) => uid === 0 || n !== kept.theirs);
  assert.deepEqual(left, want.sort());
  assert.ok(existsSync(outside));
});
