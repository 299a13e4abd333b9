// src/fsx/mkdirs.ts: `mkdir -p` that ends where Node's recursive mkdir spins
// forever (a path under /proc: procfs answers ENOENT for any new name).
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mkdirs } from '../src/fsx/mkdirs.js';
import { makeTempDir } from './support/proc.js';

it('makes every missing folder, and is content when they are there', async () => {
  const dir = await makeTempDir('airlock-mkdirs-');
  try {
    await mkdirs(path.join(dir, 'a', 'b', 'c'));
    await mkdirs(path.join(dir, 'x', 'y', 'z'), 0o700);
    assert.ok(statSync(path.join(dir, 'a', 'b', 'c')).isDirectory());
    assert.equal(statSync(path.join(dir, 'x', 'y', 'z')).mode & 0o777, 0o700);
    await mkdirs(path.join(dir, 'a', 'b', 'c'));
    await mkdirs(path.join(dir, 'a', 'b'));
    await mkdir(path.join(dir, 'a', 'b', 'c', 'd'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('refuses a file in the way', async () => {
  const dir = await makeTempDir('airlock-mkdirs-');
  try {
    await writeFile(path.join(dir, 'f'), '');
    await assert.rejects(mkdirs(path.join(dir, 'f')), { code: 'EEXIST' });
    await assert.rejects(mkdirs(path.join(dir, 'f', 'g')), { code: 'ENOTDIR' });
    await assert.rejects(mkdirs(path.join(dir, 'f', 'g', 'h')), { code: 'ENOTDIR' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

it('ends with ENOENT under /proc instead of spinning', { timeout: 10_000 }, async () => {
  await assert.rejects(mkdirs('/proc/airlock-no-such-folder/a/b'), { code: 'ENOENT' });
  await assert.rejects(mkdirs('/proc/airlock-no-such-folder/a'), { code: 'ENOENT' });
});
