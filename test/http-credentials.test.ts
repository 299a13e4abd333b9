// Where credentials come from, each for its host: docker config.json `auths`
// (with Docker Hub's many names), `credHelpers` and `credsStore` through a
// real `docker-credential-NAME get` helper on PATH, the flags for the hosts
// they name, and the order of sources.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { dockerConfigCredentials, firstOf, flagCredentials, type Credential, type CredentialLookup } from '../src/http/credentials.js';
import { makeTempDir } from './support/proc.js';

const U: Credential = { username: 'u', password: 's' };

/** Writes config.json into a fresh folder with docker-credential-test beside it; returns the env for dockerConfigCredentials. */
async function dockerDir(config: unknown): Promise<{ env: NodeJS.ProcessEnv; asked: () => Promise<string[]> }> {
  const dir = await makeTempDir('airlock-dockercfg-');
  await writeFile(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  const log = path.join(dir, 'asked.log');
  const helper = path.join(dir, 'docker-credential-test');
  // The docker-credential protocol: `get`, the server URL on standard input (no newline), JSON on standard output.
  await writeFile(
    helper,
    [
      '#!/bin/sh',
      '[ "$1" = get ] || { echo "unsupported: $1" >&2; exit 2; }',
      'server=$(cat)',
      `printf '%s\\n' "$server" >> '${log}'`,
      'case "$server" in',
      '  registry.example:5000|https://index.docker.io/v1/) printf \'{"ServerURL":"%s","Username":"u","Secret":"s"}\' "$server" ;;',
      '  token.example) printf \'{"Username":"<token>","Secret":"refresh"}\' ;;',
      '  garbage.example) echo "not json" ;;',
      '  broken.example) echo "keychain locked" >&2; exit 3 ;;',
      '  *) echo "credentials not found in native keychain"; exit 1 ;;',
      'esac',
      '',
    ].join('\n'),
  );
  await chmod(helper, 0o755);
  return {
    env: { PATH: `${dir}${path.delimiter}${process.env.PATH ?? ''}`, DOCKER_CONFIG: dir },
    asked: async () => (await readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean),
  };
}

describe('docker config.json auths', () => {
  let lookup: CredentialLookup;
  const warnings: string[] = [];
  before(async () => {
    const { env } = await dockerDir({
      auths: {
        'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
        'registry.local:5000': { username: 'plain', password: 'p' },
        'https://harbor.example/': { auth: Buffer.from('robot$ci:tok').toString('base64') },
        'nocolon.example': { auth: Buffer.from('nocolon').toString('base64') },
        'empty.example': { username: 'x', password: '' },
      },
    });
    lookup = dockerConfigCredentials({ env, warn: (m) => warnings.push(m) });
  });

  it('the auth field (base64 user:password, the password may hold colons) and username/password', async () => {
    assert.deepEqual(await lookup('registry.local:5000'), { username: 'plain', password: 'p' });
    assert.deepEqual(await lookup('harbor.example'), { username: 'robot$ci', password: 'tok' }, 'a URL key matches its host');
    assert.deepEqual(await lookup('harbor.example:443'), { username: 'robot$ci', password: 'tok' }, ':443 is the same host');
  });

  it('Docker Hub: https://index.docker.io/v1/ is registry-1.docker.io and docker.io', async () => {
    for (const h of ['registry-1.docker.io', 'docker.io', 'index.docker.io', 'registry.hub.docker.com']) {
      assert.deepEqual(await lookup(h), { username: 'hubuser', password: 'hub:pass' }, h);
    }
  });

  it('only for their host: another port, another name, a broken or empty entry get nothing', async () => {
    assert.equal(await lookup('registry.local'), undefined);
    assert.equal(await lookup('registry.local:5001'), undefined);
    assert.equal(await lookup('evil.example'), undefined);
    assert.equal(await lookup('nocolon.example'), undefined);
    assert.equal(await lookup('empty.example'), undefined);
    assert.deepEqual(warnings, []);
  });

  it('no config.json: anonymous, quietly; a broken one: anonymous, with a warning', async () => {
    const dir = await makeTempDir('airlock-nocfg-');
    const quiet: string[] = [];
    assert.equal(await dockerConfigCredentials({ env: { DOCKER_CONFIG: path.join(dir, 'none') }, warn: (m) => quiet.push(m) })('docker.io'), undefined);
    assert.deepEqual(quiet, []);
    const { env } = await dockerDir('{ not json');
    const loud: string[] = [];
    assert.equal(await dockerConfigCredentials({ env, warn: (m) => loud.push(m) })('docker.io'), undefined);
    assert.equal(loud.length, 1);
    assert.match(loud[0] ?? '', /ignoring .*config\.json/);
  });
});

describe('credential helpers', () => {
  it('credHelpers: the helper named for the host, asked with the host', async () => {
    const { env, asked } = await dockerDir({ credHelpers: { 'registry.example:5000': 'test' } });
    const warnings: string[] = [];
    const lookup = dockerConfigCredentials({ env, warn: (m) => warnings.push(m) });
    assert.deepEqual(await lookup('registry.example:5000'), U);
    assert.equal(await lookup('other.example'), undefined, 'no helper for another host, no credsStore');
    assert.deepEqual(await asked(), ['registry.example:5000']);
    assert.deepEqual(warnings, []);
  });

  it('credsStore: for every host without auths; Docker Hub asked as https://index.docker.io/v1/; "not found" is anonymous, quietly', async () => {
    const { env, asked } = await dockerDir({ credsStore: 'test', auths: { 'registry.local:5000': { username: 'plain', password: 'p' } } });
    const warnings: string[] = [];
    const lookup = dockerConfigCredentials({ env, warn: (m) => warnings.push(m) });
    assert.deepEqual(await lookup('registry-1.docker.io'), U);
    assert.deepEqual(await lookup('registry.local:5000'), { username: 'plain', password: 'p' }, 'auths first');
    assert.equal(await lookup('unknown.example'), undefined);
    assert.deepEqual(await asked(), ['https://index.docker.io/v1/', 'unknown.example']);
    assert.deepEqual(warnings, []);
  });

  it('a helper that fails otherwise, answers garbage or holds an identity token: anonymous, with a warning each', async () => {
    const { env } = await dockerDir({ credsStore: 'test' });
    const warnings: string[] = [];
    const lookup = dockerConfigCredentials({ env, warn: (m) => warnings.push(m) });
    assert.equal(await lookup('broken.example'), undefined);
    assert.equal(await lookup('garbage.example'), undefined);
    assert.equal(await lookup('token.example'), undefined);
    assert.equal(warnings.length, 3, warnings.join('\n'));
    assert.match(warnings[0] ?? '', /docker-credential-test get for broken\.example failed \(keychain locked\)/);
    assert.match(warnings[1] ?? '', /answered something that is not/);
    assert.match(warnings[2] ?? '', /identity token/);
    for (const w of warnings) assert.ok(!w.includes('refresh'), 'no secret in a warning');
  });

  it('a missing helper warns and goes on anonymously', async () => {
    const { env } = await dockerDir({ credsStore: 'absent' });
    const warnings: string[] = [];
    const lookup = dockerConfigCredentials({ env, warn: (m) => warnings.push(m) });
    assert.equal(await lookup('registry.example:5000'), undefined);
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /docker-credential-absent get for registry\.example:5000 failed \(not on PATH\); going on without credentials/);
  });

  it('a helper name that is not a plain name is not run', async () => {
    const { env } = await dockerDir({ credsStore: '../../bin/sh' });
    const warnings: string[] = [];
    assert.equal(await dockerConfigCredentials({ env, warn: (m) => warnings.push(m) })('registry.example:5000'), undefined);
    assert.match(warnings[0] ?? '', /ignoring the credential helper name/);
  });
});

describe('flagCredentials and firstOf', () => {
  it('the flags go to the named hosts only', async () => {
    const flags = flagCredentials(U, ['registry.example:5000', 'docker.io', 'harbor.example']);
    assert.deepEqual(await flags('registry.example:5000'), U);
    assert.deepEqual(await flags('registry-1.docker.io'), U, 'Docker Hub by any of its names');
    assert.deepEqual(await flags('harbor.example:443'), U);
    assert.deepEqual(await flags('HARBOR.example'), U);
    for (const h of ['registry.example', 'registry.example:5001', 'evil.example', 'harbor.example:8443', '127.0.0.1:5000']) assert.equal(await flags(h), undefined, h);
    assert.equal(await flagCredentials(undefined, ['registry.example:5000'])('registry.example:5000'), undefined);
  });

  it('firstOf: the first source that knows the host wins, and each host is looked up once', async () => {
    const calls: string[] = [];
    const source =
      (name: string, known: Record<string, Credential>): CredentialLookup =>
      async (host) => {
        calls.push(`${name}:${host}`);
        return known[host];
      };
    const a: Credential = { username: 'a', password: '1' };
    const b: Credential = { username: 'b', password: '2' };
    const lookup = firstOf(source('flags', { 'both.example': a }), source('docker', { 'both.example': b, 'docker.example': b }));
    assert.deepEqual(await lookup('both.example'), a);
    assert.deepEqual(await lookup('docker.example'), b);
    assert.equal(await lookup('none.example'), undefined);
    assert.deepEqual(await lookup('both.example'), a);
    assert.deepEqual(calls, ['flags:both.example', 'flags:docker.example', 'docker:docker.example', 'flags:none.example', 'docker:none.example']);
  });
});
