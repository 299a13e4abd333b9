import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir } from './support/proc.js';
import { runAirlock } from './support/cli.js';

const COMMANDS = ['keygen', 'build', 'diff', 'verify', 'inspect', 'unpack', 'sync', 'serve', 'images'];

test('--help lists every SPEC §1 command', async () => {
  const r = await runAirlock(['--help']);
  assert.equal(r.code, 0, r.stderr);
  for (const c of COMMANDS) assert.match(r.stdout, new RegExp(`^  ${c}\\b`, 'm'), `--help lists ${c}`);
  const extract = await runAirlock(['images', 'extract', '--help']);
  assert.match(extract.stdout, /--as-written/);
});

test('each command documents the SPEC §1 options', async () => {
  const want: Record<string, string[]> = {
    keygen: ['--out'],
    build: ['--output', '--key', '--cache', '--concurrency', '--set', '--platform', '--username', '--password-stdin', '--auth-host', '--dry-run', '--json'],
    verify: ['--pub', '--json'],
    inspect: ['--json'],
    diff: ['--json'],
    unpack: ['--pub', '--registry', '--files-dir', '--files-url', '--layout', '--fileserver-url', '--emit-config', '--plain-http', '--insecure', '--ca-file', '--username', '--password-stdin', '--concurrency', '--create-projects', '--receipt', '--json'],
    serve: ['--pub', '--listen', '--files-listen', '--tls-cert', '--tls-key'],
    sync: ['--registry', '--files-dir', '--files-url', '--layout', '--fileserver-url', '--emit-config', '--plain-http', '--insecure', '--ca-file', '--username', '--password-stdin', '--concurrency', '--create-projects', '--cache', '--set', '--platform', '--receipt', '--json'],
  };
  for (const [cmd, options] of Object.entries(want)) {
    const r = await runAirlock([cmd, '--help']);
    assert.equal(r.code, 0, `${cmd} --help: ${r.stderr}`);
    for (const o of options) assert.ok(r.stdout.includes(o), `${cmd} --help shows ${o}`);
  }
});

test('usage errors exit 2', async () => {
  assert.equal((await runAirlock(['no-such-command'])).code, 2);
  assert.equal((await runAirlock(['build'])).code, 2);
  for (const cmd of ['verify', 'unpack', 'serve']) {
    const r = await runAirlock([cmd, 'b.tar']);
    assert.equal(r.code, 2, cmd);
    assert.match(r.stderr, /give the public key with --pub PUB/);
  }
  const listen = await runAirlock(['serve', 'b.tar', '--pub', 'k.pub', '--listen', 'nowhere']);
  assert.equal(listen.code, 2);
  assert.match(listen.stderr, /--listen nowhere: write ADDR:PORT/);
  assert.equal((await runAirlock(['build', 'm.yaml', '--no-such-flag'])).code, 2);
  const badSet = await runAirlock(['build', 'm.yaml', '--set', 'no-equals']);
  assert.equal(badSet.code, 2);
  assert.match(badSet.stderr, /--set no-equals: write --set NAME=VALUE/);
});

test('build reports every manifest problem with file:line and exits 2', async () => {
  const dir = await makeTempDir('airlock-cli-');
  const file = path.join(dir, 'bad.yaml');
  await writeFile(file, 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: x\nspec:\n  images: [Nginx]\n  filez: []\n');
  const r = await runAirlock(['build', 'bad.yaml', '-o', 'b.tar', '--key', 'k.key'], undefined, { cwd: dir });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /2 problems in the manifest/);
  assert.match(r.stderr, /bad\.yaml:6:\d+: spec\.images\[0\]: invalid image reference "Nginx": repository name must be lowercase/);
  assert.match(r.stderr, /bad\.yaml:7:3: spec\.filez: unknown key "filez"; did you mean "files"\?/);
});

test('build with --set resolves variables, and checks the manifest and key before downloading', async () => {
  const dir = await makeTempDir('airlock-cli-');
  const file = path.join(dir, 'm.yaml');
  await writeFile(file, 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: x\nspec:\n  images: ["quay.io/x/y:${TAG}"]\n');
  const args = ['build', file, '-o', path.join(dir, 'b.tar'), '--key', path.join(dir, 'missing.key')];
  const missing = await runAirlock(args);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /variable TAG is not defined/);
  // Valid now, so the next check (the key, still before any download) is what fails.
  const ok = await runAirlock([...args, '--set', 'TAG=v1']);
  assert.equal(ok.code, 1);
  assert.match(ok.stderr, /cannot read the signing key .*missing\.key: ENOENT; make one with airlock keygen/);
});
