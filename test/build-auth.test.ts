// airlock build against registries that demand credentials: htpasswd basic
// auth over TLS with a test CA, and distribution's token auth.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock } from './support/cli.js';
import { makeTempDir } from './support/proc.js';
import { startTokenServer, type TestTokenServer } from './support/tokenserver.js';
import { makeCA } from './support/tls.js';
import { readTar } from './support/tarball.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let key: string;
before(async () => {
  const dir = await makeTempDir('airlock-authkey-');
  key = path.join(dir, 'k');
  assert.equal((await runAirlock(['keygen', '--out', key])).code, 0);
  key += '.key';
});

async function build(up: Upstream, specExtra: string, args: string[], opts: { stdin?: string; env?: NodeJS.ProcessEnv } = {}) {
  const dir = await makeTempDir('airlock-authb-');
  await writeFile(path.join(dir, 'm.yaml'), up.manifest({ specExtra }));
  const bundle = path.join(dir, 'b.tar');
  const r = await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', bundle, '--key', key, '--cache', path.join(dir, 'c'), ...args], opts.stdin, {
    env: { ...process.env, DOCKER_CONFIG: path.join(dir, 'no-docker-config'), ...opts.env },
  });
  return { r, bundle, dir };
}

describe('htpasswd basic auth over TLS', () => {
  let up: Upstream;
  let registries: string;
  before(async () => {
    up = await startUpstream({ registry: { basicAuth: { username: 'ops', password: 'pa55 word' } } });
    assert.ok(up.registry.caFile && up.registry.url.startsWith('https://'));
    registries = `  registries:\n    "${up.registry.host}": { caFile: "${up.registry.caFile}" }\n`;
  });
  after(async () => up?.stop());

  it('builds with --username and --password-stdin and the CA from the manifest', async () => {
    const { r, bundle } = await build(up, registries, ['--username', 'ops', '--password-stdin', '--auth-host', up.registry.host], { stdin: 'pa55 word\n' });
    assert.equal(r.code, 0, r.stderr);
    const names = (await readTar(bundle)).map((e) => e.name);
    assert.ok(names.includes(`blobs/sha256/${up.refs.ociIndex.pushed.digest.slice(7)}`));
  });

  it('builds with credentials from DOCKER_CONFIG config.json (auth field)', async () => {
    const cfg = await makeTempDir('airlock-dockercfg-');
    await writeFile(path.join(cfg, 'config.json'), JSON.stringify({ auths: { [`https://${up.registry.host}`]: { auth: Buffer.from('ops:pa55 word').toString('base64') } } }));
    const { r } = await build(up, registries, [], { env: { DOCKER_CONFIG: cfg } });
    assert.equal(r.code, 0, r.stderr);
  });

  it('without credentials every item fails with a message saying what to pass', async () => {
    const { r, bundle } = await build(up, registries, []);
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`${up.registry.host} asks for a user name and password: give them for this host \\(--username with --password-stdin, and --auth-host on build\\) or in docker config.json`));
    assert.match(r.stderr, /items failed; no bundle was written/);
    void bundle;
  });

  it('--username without --auth-host is a usage error; flags for another host are not sent here', async () => {
    const none = await build(up, registries, ['--username', 'ops', '--password-stdin'], { stdin: 'pa55 word' });
    assert.equal(none.r.code, 2);
    assert.match(none.r.stderr, /--username needs --auth-host HOST/);
    const other = await build(up, registries, ['--username', 'ops', '--password-stdin', '--auth-host', 'registry.example'], { stdin: 'pa55 word' });
    assert.equal(other.r.code, 1);
    assert.match(other.r.stderr, /asks for a user name and password/);
  });

  it('--auth-host that is not a registry host (a URL, a password in it) is a usage error, which never repeats the password', async () => {
    const secret = await build(up, registries, ['--username', 'ops', '--password-stdin', '--auth-host', `ops:s3cretpw@${up.registry.host}`], { stdin: 'pa55 word' });
    assert.equal(secret.r.code, 2, secret.r.stderr);
    assert.match(secret.r.stderr, new RegExp(`--auth-host "\\*\\*\\*@${up.registry.host}" holds a user name or password`));
    assert.doesNotMatch(secret.r.stderr, /s3cretpw/);
    const url = await build(up, registries, ['--username', 'ops', '--password-stdin', '--auth-host', `https://${up.registry.host}`], { stdin: 'pa55 word' });
    assert.equal(url.r.code, 2, url.r.stderr);
    assert.match(url.r.stderr, /not a registry host; write it as in image references, HOST or HOST:PORT/);
  });

  it('a wrong password is named as such', async () => {
    const { r } = await build(up, registries, ['--username', 'ops', '--password-stdin', '--auth-host', up.registry.host], { stdin: 'nope' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /answered HTTP 401; the registry refused the credentials/);
  });

  it('a CA that did not sign the certificate is refused; HTTPS never falls back to HTTP', async () => {
    const other = await makeCA(await makeTempDir('airlock-otherca-'), 'someone else');
    const { r } = await build(up, `  registries:\n    "${up.registry.host}": { caFile: "${other.caCert}" }\n`, ['--username', 'ops', '--password-stdin', '--auth-host', up.registry.host], { stdin: 'pa55 word' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /certificate/i);
  });

  it('insecureSkipTLSVerify speaks HTTPS without checking the certificate', async () => {
    const { r } = await build(up, `  registries:\n    "${up.registry.host}": { insecureSkipTLSVerify: true }\n`, ['--username', 'ops', '--password-stdin', '--auth-host', up.registry.host], { stdin: 'pa55 word' });
    assert.equal(r.code, 0, r.stderr);
  });

  it('loopback without TLS settings speaks plain HTTP, and the error says how to switch to HTTPS', async () => {
    const { r } = await build(up, '', ['--username', 'ops', '--password-stdin', '--auth-host', up.registry.host], { stdin: 'pa55 word' });
    assert.equal(r.code, 1);
    assert.match(r.stderr, new RegExp(`HTTP 400; if ${up.registry.host} speaks HTTPS, set registries."${up.registry.host}".caFile`));
  });
});

describe('token auth (distribution auth: token), the realm over HTTPS', () => {
  let up: Upstream;
  let tokens: TestTokenServer;
  let registries: string;
  before(async () => {
    tokens = await startTokenServer({ users: { builder: 'tok3n' }, tls: true });
    registries = `  registries:\n    "${tokens.host}": { caFile: "${tokens.caFile}" }\n`;
    up = await startUpstream({
      registry: { tokenAuth: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } },
      seederAuth: { username: 'builder', password: 'tok3n', bearer: true, ...(tokens.caFile && { caFile: tokens.caFile }) },
    });
  });
  after(async () => {
    await up?.stop();
    await tokens?.stop();
  });

  it('fetches pull tokens per repository and builds', async () => {
    tokens.requests.length = 0;
    const { r } = await build(up, registries, ['--username', 'builder', '--password-stdin', '--auth-host', up.registry.host], { stdin: 'tok3n' });
    assert.equal(r.code, 0, r.stderr);
    const scopes = new Set(tokens.requests.filter((q) => q.status === 200).flatMap((q) => q.scope));
    for (const repo of ['team/app', 'team/docker-app', 'aquasecurity/trivy-db', 'falcosecurity/rules/falco-rules']) {
      assert.ok(scopes.has(`repository:${repo}:pull`), `asked for a pull token on ${repo}`);
    }
    assert.ok(tokens.requests.every((q) => q.user === 'builder'), 'every token request carried the credentials');
    // Tokens are cached: far fewer token requests than registry requests.
    assert.ok(tokens.requests.length <= 12, `${tokens.requests.length} token requests`);
  });

  it('anonymous access is refused with a clear message', async () => {
    const { r } = await build(up, registries, []);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /refused (anonymous access|the credentials)|401/);
  });
});



describe('token auth with a plain-HTTP realm on another port', () => {
  let up: Upstream;
  let tokens: TestTokenServer;
  before(async () => {
    tokens = await startTokenServer({ users: { builder: 'tok3n' }, anonymousPull: true });
    up = await startUpstream({
      registry: { tokenAuth: { realm: tokens.realm, service: tokens.service, issuer: tokens.issuer, rootCertBundle: tokens.rootCertBundle } },
      seederAuth: { username: 'builder', password: 'tok3n', bearer: true },
    });
  });
  after(async () => {
    await up?.stop();
    await tokens?.stop();
  });

  it('never sends the credentials there: anonymous tokens, with a warning naming both hosts', async () => {
    tokens.requests.length = 0;
    const { r } = await build(up, '', ['--username', 'builder', '--password-stdin', '--auth-host', up.registry.host], { stdin: 'tok3n' });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(tokens.requests.length > 0, 'tokens were asked for');
    assert.ok(tokens.requests.every((q) => q.authorization === undefined), 'no token request carried an Authorization header');
    assert.match(r.stderr, new RegExp(`not sending the credentials for ${up.registry.host} to ${tokens.host}: the token realm http://${tokens.host} is plain HTTP`));
  });
});
