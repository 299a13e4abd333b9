/**
 * Proves the token server and the fault proxy with real clients only (undici,
 * the raw-API Seeder, skopeo) against real docker-registry processes —
 * independent of airlock's own code.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, Seeder, sha256, type PushedImage } from './support/seed.js';
import { startTokenServer, type TestTokenServer } from './support/tokenserver.js';
import { skopeo, skopeoOk } from './support/skopeo.js';

let work: string;

before(async () => {
  work = await makeTempDir('airlock-faultproxy-');
});

after(async () => {
  await removeTempDir(work);
});



function basic(user: string, pass: string): string {
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

function decodeJwt(token: string): { header: Record<string, unknown>; claims: Record<string, unknown> } {
  const [h, c] = token.split('.');
  return {
    header: JSON.parse(Buffer.from(h ?? '', 'base64url').toString('utf8')) as Record<string, unknown>,
    claims: JSON.parse(Buffer.from(c ?? '', 'base64url').toString('utf8')) as Record<string, unknown>,
  };
}

async function getToken(ts: TestTokenServer, scopes: string[], authorization?: string): Promise<{ status: number; token?: string }> {
  const url = new URL(ts.realm);
  url.searchParams.set('service', ts.service);
  for (const s of scopes) url.searchParams.append('scope', s);
  const res = await request(url, { headers: authorization === undefined ? {} : { authorization } });
  const body = await res.body.text();
  if (res.statusCode !== 200) return { status: res.statusCode };
  const json = JSON.parse(body) as { token: string; access_token: string; expires_in: number; issued_at: string };
  assert.equal(json.access_token, json.token);
  assert.equal(json.expires_in, 300);
  assert.ok(!Number.isNaN(Date.parse(json.issued_at)));
  return { status: 200, token: json.token };
}

async function get(url: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const res = await request(url, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  const flat: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v;
  return { status: res.statusCode, headers: flat, body };
}

describe('token server + token-auth docker-registry', () => {
  let ts: TestTokenServer;
  let reg: TestRegistry;
  let plain: TestRegistry;
  let source: PushedImage;

  before(async () => {
    ts = await startTokenServer({ users: { alice: 's3cret' }, anonymousPull: true });
    reg = await startRegistry({ tokenAuth: ts });
    plain = await startRegistry();
    const seeder = new Seeder(plain);
    try {
      source = await seeder.pushImage('src/app', 'v1', {
        layers: [await makeLayer('token test layer', 40_000)],
        format: 'oci',
      });
    } finally {
      await seeder.close();
    }
  });

  after(async () => {
    await reg?.stop();
    await plain?.stop();
    await ts?.stop();
  });

  it('anonymous /v2/ is challenged; a token from the server is accepted', async () => {
    const anon = await get(`${reg.url}/v2/`);
    assert.equal(anon.status, 401);
    assert.equal(anon.headers['www-authenticate'], `Bearer realm="${ts.realm}",service="${ts.service}"`);

    const { status, token } = await getToken(ts, [], basic('alice', 's3cret'));
    assert.equal(status, 200);
    assert.ok(token !== undefined);
    const { header, claims } = decodeJwt(token);
    assert.equal(header['alg'], 'ES256');
    assert.equal(header['typ'], 'JWT');
    assert.ok(Array.isArray(header['x5c']) && header['x5c'].length === 1);
    assert.equal(claims['iss'], ts.issuer);
    assert.equal(claims['aud'], ts.service);
    assert.equal(claims['sub'], 'alice');
    assert.deepEqual(claims['access'], []);
    assert.equal(token.split('.')[2]?.length, 86, 'ES256 signature is 64 raw bytes');

    const ok = await get(`${reg.url}/v2/`, { authorization: `Bearer ${token}` });
    assert.equal(ok.status, 200);
  });

  it('the registry really verifies tokens: tampered, foreign-audience and wrong-scope tokens are refused', async () => {
    const { token } = await getToken(ts, ['repository:src/app:pull'], basic('alice', 's3cret'));
    assert.ok(token !== undefined);
    const [h, c, s] = token.split('.') as [string, string, string];
    const claims = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'mallory' })).toString('base64url')}.${s}`;
    assert.equal((await get(`${reg.url}/v2/`, { authorization: `Bearer ${forged}` })).status, 401);

    const now = Math.floor(Date.now() / 1000);
    const otherAud = ts.sign({ ...claims, aud: 'some-other-service', exp: now + 60 });
    assert.equal((await get(`${reg.url}/v2/`, { authorization: `Bearer ${otherAud}` })).status, 401);
    const expired = ts.sign({ ...claims, exp: now - 3600, nbf: now - 7200, iat: now - 7200 });
    assert.equal((await get(`${reg.url}/v2/`, { authorization: `Bearer ${expired}` })).status, 401);

    // Pull on src/app does not cover another repository.
    const other = await get(`${reg.url}/v2/other/repo/tags/list`, { authorization: `Bearer ${token}` });
    assert.equal(other.status, 401);
    assert.match(other.headers['www-authenticate'] ?? '', /error="insufficient_scope"/);
  });

  it('skopeo with --creds pushes (copy from a plain registry) and inspects', async () => {
    const before = ts.requests.length;
    await skopeoOk([
      'copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', 'alice:s3cret',
      `docker://${plain.host}/src/app:v1`, `docker://${reg.host}/mirror/app:v1`,
    ]);
    const pushes = ts.requests.slice(before).filter((r) => r.scope.some((s) => s.startsWith('repository:mirror/app:') && s.includes('push')));
    assert.ok(pushes.length > 0, `skopeo asked for push: ${JSON.stringify(ts.requests.slice(before))}`);
    assert.ok(pushes.every((r) => r.user === 'alice' && r.status === 200));

    const raw = await skopeoOk(['inspect', '--raw', '--tls-verify=false', '--creds', 'alice:s3cret', `docker://${reg.host}/mirror/app:v1`]);
    assert.ok(raw.equals(source.manifest));
  });

  it('anonymous pull works (anonymousPull) and anonymous push is denied', async () => {
    const raw = await skopeoOk(['inspect', '--raw', '--tls-verify=false', '--no-creds', `docker://${reg.host}/mirror/app:v1`]);
    assert.ok(raw.equals(source.manifest));
    const anonGrant = ts.requests.filter((r) => r.user === undefined && r.status === 200 && r.scope.includes('repository:mirror/app:pull'));
    assert.ok(anonGrant.length > 0);
    assert.deepEqual(anonGrant.at(-1)?.access, [{ type: 'repository', name: 'mirror/app', actions: ['pull'] }]);

    const anon = new Seeder({ url: reg.url, bearer: true });
    try {
      const m = await anon.getManifest('mirror/app', 'v1');
      assert.equal(m.status, 200);
      assert.ok(m.body.equals(source.manifest));
      await assert.rejects(anon.pushBlob('mirror/app', Buffer.from('anonymous push')), /POST upload mirror\/app: HTTP 401/);
    } finally {
      await anon.close();
    }
    const pushAsked = ts.requests.filter((r) => r.user === undefined && r.scope.some((s) => s.includes('push')));
    assert.ok(pushAsked.length > 0);
    for (const r of pushAsked) for (const a of r.access ?? []) assert.deepEqual(a.actions, ['pull']);

    const r = await skopeo([
      'copy', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-no-creds',
      `docker://${plain.host}/src/app:v1`, `docker://${reg.host}/anon/app:v1`,
    ]);
    assert.notEqual(r.code, 0, 'anonymous push must fail');
  });

  it('a wrong password is 401 at the token server (and for skopeo)', async () => {
    assert.equal((await getToken(ts, ['repository:mirror/app:pull'], basic('alice', 'wrong'))).status, 401);
    assert.equal((await getToken(ts, ['repository:mirror/app:pull'], basic('nobody', 's3cret'))).status, 401);
    assert.equal(ts.requests.at(-1)?.status, 401);
    assert.equal(ts.requests.at(-1)?.user, undefined);
    const r = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', 'alice:wrong', `docker://${reg.host}/mirror/app:v1`]);
    assert.notEqual(r.code, 0);
    const bad = new Seeder({ url: reg.url, username: 'alice', password: 'wrong', bearer: true });
    try {
      await assert.rejects(bad.getManifest('mirror/app', 'v1'), /token server .*: HTTP 401/);
    } finally {
      await bad.close();
    }
  });

  it('the Seeder follows the bearer flow with credentials', async () => {
    const seeder = new Seeder({ url: reg.url, username: 'alice', password: 's3cret', bearer: true });
    try {
      const img = await seeder.pushImage('seeded/app', 'v1', { layers: [await makeLayer('bearer seeded', 5000)], format: 'docker' });
      const m = await seeder.getManifest('seeded/app', 'v1');
      assert.equal(m.status, 200);
      assert.ok(m.body.equals(img.manifest));
    } finally {
      await seeder.close();
    }
  });

  describe('without anonymousPull', () => {
    let ts2: TestTokenServer;
    let reg2: TestRegistry;
    before(async () => {
      ts2 = await startTokenServer({ users: { bob: 'pw' } });
      reg2 = await startRegistry({ tokenAuth: ts2 });
      const s = new Seeder({ url: reg2.url, username: 'bob', password: 'pw', bearer: true });
      try {
        await s.pushImage('private/app', 'v1', { layers: [await makeLayer('private', 1000)], format: 'oci' });
      } finally {
        await s.close();
      }
    });
    after(async () => {
      await reg2?.stop();
      await ts2?.stop();
    });

    it('anonymous tokens carry no access and the registry refuses anonymous pull', async () => {
      const { status, token } = await getToken(ts2, ['repository:private/app:pull']);
      assert.equal(status, 200);
      assert.ok(token !== undefined);
      assert.deepEqual(decodeJwt(token).claims['access'], []);
      const r = await get(`${reg2.url}/v2/private/app/manifests/v1`, { authorization: `Bearer ${token}` });
      assert.equal(r.status, 401);
      const sk = await skopeo(['inspect', '--raw', '--tls-verify=false', '--no-creds', `docker://${reg2.host}/private/app:v1`]);
      assert.notEqual(sk.code, 0);
      await skopeoOk(['inspect', '--raw', '--tls-verify=false', '--creds', 'bob:pw', `docker://${reg2.host}/private/app:v1`]);
    });
  });
});

describe('fault proxy in front of a real registry', () => {
  let reg: TestRegistry;
  let proxy: TestFaultProxy;
  let img: PushedImage;
  let layer: Buffer;
  let blobPath: string;

  before(async () => {
    reg = await startRegistry();
    layer = await makeLayer('fault proxy big layer', 3 * 1024 * 1024);
    const seeder = new Seeder(reg);
    try {
      img = await seeder.pushImage('fp/app', 'v1', { layers: [layer], format: 'oci' });
    } finally {
      await seeder.close();
    }
    blobPath = `/v2/fp/app/blobs/${sha256(layer)}`;
    proxy = await startFaultProxy(reg.url);
  });

  after(async () => {
    await proxy?.stop();
    await reg?.stop();
  });

  it('passes through manifests, headers and HEAD, over one keep-alive connection', async () => {
    proxy.clearRules();
    proxy.stats.reset();
    const agent = new Agent({ connections: 1 });
    try {
      const m = await request(`${proxy.url}/v2/fp/app/manifests/v1`, {
        dispatcher: agent,
        headers: { accept: img.mediaType },
      });
      const body = Buffer.from(await m.body.arrayBuffer());
      assert.equal(m.statusCode, 200);
      assert.ok(body.equals(img.manifest));
      assert.equal(m.headers['docker-content-digest'], img.digest);
      assert.equal(m.headers['content-type'], img.mediaType);

      const missing = await request(`${proxy.url}/v2/fp/app/manifests/nope`, { dispatcher: agent });
      assert.equal(missing.statusCode, 404);
      assert.match(await missing.body.text(), /MANIFEST_UNKNOWN/);

      const ping = await request(`${proxy.url}/v2/`, { dispatcher: agent });
      await ping.body.dump();
      assert.equal(ping.statusCode, 200);
      assert.equal(proxy.stats.connections, 1, 'keep-alive: one client connection for three requests');

      // (undici closes the connection after any HEAD, so this comes last.)
      const h = await request(`${proxy.url}${blobPath}`, { method: 'HEAD', dispatcher: agent });
      await h.body.dump();
      assert.equal(h.statusCode, 200);
      assert.equal(h.headers['content-length'], String(layer.length));
      assert.equal(h.headers['docker-content-digest'], sha256(layer));
    } finally {
      await agent.close();
    }
    assert.deepEqual(
      proxy.stats.requests.map((r) => [r.method, r.status]),
      [['GET', 200], ['GET', 404], ['GET', 200], ['HEAD', 200]],
    );
    assert.equal(proxy.stats.bytesByPath.get('/v2/fp/app/manifests/v1'), img.manifest.length);
    assert.equal(proxy.stats.bytesByPath.get(blobPath) ?? 0, 0, 'HEAD sends no body');
  });

  it('a 429 rule answers 429 + Retry-After without forwarding, then the next request succeeds', async () => {
    proxy.clearRules();
    proxy.stats.reset();
    proxy.addRule({ kind: 'status', status: 429, retryAfter: 7, match: /\/manifests\// });
    const first = await get(`${proxy.url}/v2/fp/app/manifests/v1`, { accept: img.mediaType });
    assert.equal(first.status, 429);
    assert.equal(first.headers['retry-after'], '7');
    const err = JSON.parse(first.body.toString('utf8')) as { errors: Array<{ code: string }> };
    assert.equal(err.errors[0]?.code, 'TOOMANYREQUESTS');
    assert.equal(proxy.stats.bytesByPath.get('/v2/fp/app/manifests/v1') ?? 0, 0, 'nothing relayed from upstream');

    const second = await get(`${proxy.url}/v2/fp/app/manifests/v1`, { accept: img.mediaType });
    assert.equal(second.status, 200);
    assert.ok(second.body.equals(img.manifest));
    assert.deepEqual(
      proxy.stats.requests.map((r) => [r.status, r.fault]),
      [[429, 'status'], [200, undefined]],
    );
    assert.equal(proxy.pendingRules, 0);
  });

  it('rules honour method and times', async () => {
    proxy.clearRules();
    proxy.addRule({ kind: 'status', status: 503, method: 'HEAD', match: /\/blobs\//, times: 2 });
    assert.equal((await get(`${proxy.url}${blobPath}`)).status, 200, 'GET is not matched by a HEAD rule');
    const head = async (): Promise<number> => {
      const r = await request(`${proxy.url}${blobPath}`, { method: 'HEAD' });
      await r.body.dump();
      return r.statusCode;
    };
    assert.deepEqual([await head(), await head(), await head()], [503, 503, 200]);
  });

  it('a drop rule cuts a blob GET short; the next GET is whole and verifies', async () => {
    proxy.clearRules();
    proxy.stats.reset();
    const cutAt = 100_000;
    proxy.addRule({ kind: 'drop', afterBytes: cutAt, match: /\/blobs\/sha256:/ });
    const res = await request(`${proxy.url}${blobPath}`);
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-length'], String(layer.length));
    let got = 0;
    let failed = false;
    try {
      for await (const chunk of res.body) got += (chunk as Buffer).length;
    } catch {
      failed = true;
    }
    assert.ok(failed, 'the client sees an error');
    assert.ok(got <= cutAt && got < layer.length, `client got ${got} bytes`);

    const whole = await get(`${proxy.url}${blobPath}`);
    assert.equal(whole.status, 200);
    assert.equal(whole.body.length, layer.length);
    assert.equal(sha256(whole.body), sha256(layer));
    assert.equal(proxy.stats.bytesByPath.get(blobPath), cutAt + layer.length);
    assert.equal(proxy.stats.blobBytes(), cutAt + layer.length);
  });

  it('a stall rule pauses the body mid-way; the body still arrives whole', async () => {
    proxy.clearRules();
    proxy.addRule({ kind: 'stall', afterBytes: 50_000, ms: 600, match: /\/blobs\/sha256:/ });
    const t0 = Date.now();
    const res = await request(`${proxy.url}${blobPath}`);
    let firstAt = 0;
    const chunks: Buffer[] = [];
    for await (const c of res.body) {
      if (firstAt === 0) firstAt = Date.now();
      chunks.push(c as Buffer);
    }
    const total = Date.now() - t0;
    assert.ok(firstAt - t0 < 500, `headers and first bytes came early (${firstAt - t0} ms)`);
    assert.ok(total >= 580, `body took ${total} ms`);
    assert.equal(sha256(Buffer.concat(chunks)), sha256(layer));
  });

  it('a delay rule delays the response', async () => {
    proxy.clearRules();
    proxy.addRule({ kind: 'delay', ms: 400, match: /^\/v2\/$/ });
    const t0 = Date.now();
    assert.equal((await get(`${proxy.url}/v2/`)).status, 200);
    assert.ok(Date.now() - t0 >= 390);
    const t1 = Date.now();
    assert.equal((await get(`${proxy.url}/v2/`)).status, 200);
    assert.ok(Date.now() - t1 < 390, 'rule used up');
  });

  it('a Range GET through the proxy returns 206 with the right bytes', async () => {
    proxy.clearRules();
    proxy.stats.reset();
    const r = await get(`${proxy.url}${blobPath}`, { range: 'bytes=1000-1999' });
    assert.equal(r.status, 206);
    assert.equal(r.headers['content-range'], `bytes 1000-1999/${layer.length}`);
    assert.ok(r.body.equals(layer.subarray(1000, 2000)));
    assert.equal(proxy.stats.blobBytes(), 1000);
  });

  it('skopeo inspect --raw and copy through the proxy see the exact bytes; blobBytes counts them', async () => {
    proxy.clearRules();
    proxy.stats.reset();
    const raw = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${proxy.host}/fp/app:v1`]);
    assert.ok(raw.equals(img.manifest));
    assert.equal(proxy.stats.blobBytes(), 0);

    const dest = path.join(work, 'copy-dir');
    await skopeoOk(['copy', '--src-tls-verify=false', `docker://${proxy.host}/fp/app:v1`, `dir:${dest}`]);
    const expected = img.config.length + layer.length;
    assert.equal(proxy.stats.blobBytes(), expected);
    assert.equal(proxy.stats.bytesByPath.get(blobPath), layer.length);
  });

  it('pushes stream through the proxy, with Location rewritten to the proxy', async () => {
    proxy.clearRules();
    proxy.stats.reset();
    const data = Buffer.from('pushed through the fault proxy '.repeat(1000));
    const digest = sha256(data);
    const start = await request(`${proxy.url}/v2/fp/pushed/blobs/uploads/`, { method: 'POST', body: '' });
    await start.body.dump();
    assert.equal(start.statusCode, 202);
    const loc = new URL(String(start.headers['location']), proxy.url);
    assert.equal(loc.host, proxy.host);

    // PATCH with a chunked (streamed) body, then PUT ?digest.
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < data.length; i += 4096) yield data.subarray(i, i + 4096);
    }
    const patch = await request(loc, { method: 'PATCH', body: Readable.from(chunks()), headers: { 'content-type': 'application/octet-stream' } });
    await patch.body.dump();
    assert.equal(patch.statusCode, 202);
    assert.equal(patch.headers['range'], `0-${data.length - 1}`);
    const loc2 = new URL(String(patch.headers['location']), proxy.url);
    assert.equal(loc2.host, proxy.host);
    loc2.searchParams.set('digest', digest);
    const put = await request(loc2, { method: 'PUT', body: '' });
    await put.body.dump();
    assert.equal(put.statusCode, 201);
    assert.equal(put.headers['docker-content-digest'], digest);
    assert.equal(new URL(String(put.headers['location']), proxy.url).host, proxy.host);

    // The Seeder (monolithic POST + PUT) works through the proxy as well.
    const seeder = new Seeder({ url: proxy.url });
    try {
      const pushed = await seeder.pushImage('fp/pushed', 'v1', { layers: [await makeLayer('via proxy', 20_000)], format: 'oci' });
      const direct = new Seeder(reg);
      try {
        const m = await direct.getManifest('fp/pushed', 'v1');
        assert.ok(m.body.equals(pushed.manifest));
        const b = await direct.fetch('GET', `v2/fp/pushed/blobs/${digest}`);
        assert.ok(b.body.equals(data));
      } finally {
        await direct.close();
      }
    } finally {
      await seeder.close();
    }
    assert.ok(proxy.stats.requests.some((r) => r.method === 'PATCH' && r.status === 202));
  });
});
