// keygen: the private key is 0600, never written through a link, and a key
// landing inside a git work tree is warned about. Real folders, real git.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock } from './support/cli.js';
import { makeTempDir } from './support/proc.js';
import { runOk } from './support/tools.js';

const WARNING = /warning: the private key .* is inside the git work tree/;

/** True when some folder at or above `dir` holds a .git: the "outside" case needs a temp folder that is not. */
function insideGit(dir: string): boolean {
  for (let d = dir; ; d = path.dirname(d)) {
    if (existsSync(path.join(d, '.git'))) return true;
    if (path.dirname(d) === d) return false;
  }
}

test('outside a git work tree: PREFIX.key is mode 0600, no warning', async () => {
  const dir = await makeTempDir('airlock-keygen-');
  assert.equal(insideGit(dir), false, `${dir} is inside a git work tree; the test needs a temp folder outside one`);
  const r = await runAirlock(['keygen', '--out', path.join(dir, 'k')]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, /^wrote .*k\.key \(private\) and .*k\.pub\nfingerprint sha256:[a-f0-9]{64}\n$/);
  assert.equal((await stat(path.join(dir, 'k.key'))).mode & 0o777, 0o600);
  assert.equal((await stat(path.join(dir, 'k.pub'))).mode & 0o022, 0, 'the public key is not group- or world-writable');
});

test('inside a git work tree (git init, a folder below it): a warning on stderr naming the tree, and the key is still written 0600', async () => {
  const repo = await makeTempDir('airlock-keygen-git-');
  await runOk('git', ['init', '-q', repo]);
  const sub = path.join(repo, 'keys', 'signing');
  await mkdir(sub, { recursive: true });
  const r = await runAirlock(['keygen', '--out', path.join(sub, 'k')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, WARNING);
  assert.ok(r.stderr.includes(`git work tree ${repo};`), r.stderr);
  assert.match(r.stderr, /do not commit it \(add \*\.key to \.gitignore\)/);
  assert.equal((await stat(path.join(sub, 'k.key'))).mode & 0o777, 0o600);

  // With a relative --out from inside the tree too.
  const rel = await runAirlock(['keygen', '--out', 'rel'], undefined, { cwd: sub });
  assert.equal(rel.code, 0, rel.stderr);
  assert.match(rel.stderr, WARNING);
});

test('a linked work tree or submodule (.git is a file) counts as a git work tree too', async () => {
  const tree = await makeTempDir('airlock-keygen-wt-');
  await writeFile(path.join(tree, '.git'), 'gitdir: /somewhere/.git/worktrees/x\n');
  const r = await runAirlock(['keygen', '--out', path.join(tree, 'k')]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, WARNING);
});

test('a symbolic link at PREFIX.key is not followed: keygen refuses and writes nothing through it', async () => {
  const dir = await makeTempDir('airlock-keygen-link-');
  const target = path.join(dir, 'elsewhere.pem');
  await symlink(target, path.join(dir, 'k.key'));
  const r = await runAirlock(['keygen', '--out', path.join(dir, 'k')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /k\.key already exists; refusing to overwrite it/);
  assert.equal(existsSync(target), false);
  assert.equal(existsSync(path.join(dir, 'k.pub')), false);
});
