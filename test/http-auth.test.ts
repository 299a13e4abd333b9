// The auth interceptor against real servers: basic credentials go to their
// own host only, bearer tokens come from the realm and are cached per scope,
// credentials reach a token realm only where SPEC §1 allows it, and a 401
// after credentials is the caller's to see. The pure parts (challenges, the
// realm rules, scopes) are checked case by case.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Http } from '../src/http/client.js';
import { parseChallenge, realmRefusal, scopesFor } from '../src/http/auth.js';
import { flagCredentials, type Credential } from '../src/http/credentials.js';
import { AuthError } from '../src/http/errors.js';
import { makeTempDir } from './support/proc.js';
import { startServer, type TestServer } from './support/httpserver.js';
import { makeCA, makeServerCert } from './support/tls.js';

const RETRY = { baseDelayMs: 5, maxDelayMs: 20 };
const USER: Credential = { username: 'ops', password: 'pa55 word' };
const BASIC = `Basic ${Buffer.from('ops:pa55 word').toString('base64')}`;

interface TokenRequest {
  scope: string[];
  service: string | null;
  authorization: string | undefined;
}

/** Tokens issued by any token endpoint of this file, with the scopes they grant. */
const issued = new Map<string, string[]>();

/** A token endpoint: basic credentials optional (anonymous gets a token too, marked as such); wrong ones get 401. */
function tokenEndpoint(log: TokenRequest[]) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const entry: TokenRequest = { scope: u.searchParams.getAll('scope'), service: u.searchParams.get('service'), authorization: req.headers.authorization };
    log.push(entry);
    if (entry.authorization !== undefined && entry.authorization !== BASIC) {
      res.writeHead(401);
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    const token = `tok${issued.size + 1}-${entry.authorization ? 'user' : 'anon'}`;
    issued.set(token, entry.scope);
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300 }));
  };
}

/** A /v2/ API that wants a bearer token for the right scope, challenging with `realm()`. */
function bearerRegistry(realm: () => string) {
  return (req: IncomingMessage, res: ServerResponse) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const m = /^\/v2\/(.+?)\/(manifests|blobs)\//.exec(u.pathname);
    const need = m ? `repository:${m[1]}:${req.method === 'GET' || req.method === 'HEAD' ? 'pull' : 'pull,push'}` : 'registry:catalog:*';
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !issued.get(token)?.includes(need)) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm()}",service="test-registry",scope="${need}"`, 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
      return;
    }
    res.writeHead(200);
    res.end(`ok ${token}`);
  };
}

describe('basic auth: credentials of that host only', () => {
  let a: TestServer;
  before(async () => {
    a = await startServer((req, res) => {
      if (req.headers.authorization !== BASIC) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="a"' });
        res.end();
        return;
      }
      res.writeHead(200);
      res.end('welcome');
    });
  });
  after(async () => a?.close());

  it('the challenge is answered with the credentials given for this host', async () => {
    const asked: string[] = [];
    const lookup = flagCredentials(USER, [a.host]);
    const http = new Http({ retry: RETRY, credentials: (h) => (asked.push(h), lookup(h)) });
    try {
      const res = await http.request(`${a.origin}/v2/`);
      assert.equal(res.status, 200);
      assert.equal(await res.body.text(), 'welcome');
      assert.deepEqual(asked, [a.host], 'looked up by host:port, once');
      const again = await http.request(`${a.origin}/v2/x/manifests/1`);
      assert.equal(again.status, 200);
      await again.body.dump();
      assert.equal(a.seen.at(-1)?.headers.authorization, BASIC, 'once basic is known, credentials go with the first attempt');
    } finally {
      await http.close();
    }
  });

  it('credentials given for another host (another port, or localhost for 127.0.0.1) never reach it', async () => {
    const before = a.seen.length;
    for (const other of [`127.0.0.1:${a.port + 1}`, `localhost:${a.port}`, '127.0.0.1']) {
      const http = new Http({ retry: RETRY, credentials: flagCredentials(USER, [other]) });
      try {
        const err = await http.request(`${a.origin}/v2/`).then(
          () => assert.fail('answered without credentials'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof AuthError, String(err));
        assert.match(err.message, new RegExp(`${a.host} asks for a user name and password`));
      } finally {
        await http.close();
      }
    }
    const mine = a.seen.slice(before);
    assert.equal(mine.length, 3, 'one challenged request each, not repeated');
    for (const s of mine) assert.equal(s.headers.authorization, undefined);
  });

  it('a 401 after sending credentials is handed to the caller, not looped', async () => {
    const refusing = await startServer((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="never"' });
      res.end('no');
    });
    const http = new Http({ retry: RETRY, credentials: flagCredentials(USER, [refusing.host]) });
    try {
      const res = await http.request(`${refusing.origin}/v2/`);
      assert.equal(res.status, 401);
      assert.equal(await res.body.text(), 'no');
      assert.equal(refusing.seen.length, 2, 'without credentials, then with them: no more');
      assert.equal(refusing.seen[1]?.headers.authorization, BASIC);
      // Next time the credentials go at once; the same refusal then says so.
      await assert.rejects(http.request(`${refusing.origin}/v2/`), (e: unknown) => e instanceof AuthError && /refused the credentials/.test(e.message));
      assert.equal(refusing.seen.length, 3);
    } finally {
      await http.close();
      await refusing.close();
    }
  });
});

describe('bearer tokens from the realm', () => {
  let reg: TestServer;
  const tokens: TokenRequest[] = [];
  before(async () => {
    const api = bearerRegistry(() => `${reg.origin}/token`);
    const token = tokenEndpoint(tokens);
    reg = await startServer((req, res) => (req.url?.startsWith('/token') ? token(req, res) : api(req, res)));
  });
  after(async () => reg?.close());

  it('fetches a token with the credentials (plain HTTP realm on the registry host:port) and caches it per scope', async () => {
    const warnings: string[] = [];
    const http = new Http({ retry: RETRY, credentials: flagCredentials(USER, [reg.host]), warn: (m) => warnings.push(m) });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await http.request(`${reg.origin}/v2/lib/app/manifests/v1`);
        assert.equal(res.status, 200);
        assert.match(await res.body.text(), /^ok tok\d+-user$/);
      }
      const head = await http.request(`${reg.origin}/v2/lib/app/blobs/sha256:${'0'.repeat(64)}`, { method: 'HEAD' });
      assert.equal(head.status, 200);
      assert.equal(tokens.length, 1, 'one token for every pull of lib/app');
      assert.deepEqual(tokens[0], { scope: ['repository:lib/app:pull'], service: 'test-registry', authorization: BASIC });
      const api = reg.seen.filter((s) => s.path.startsWith('/v2/'));
      assert.equal(api.length, 5, 'one 401, then every request with the cached token');

      const put = await http.request(`${reg.origin}/v2/lib/app/manifests/v1`, { method: 'PUT', body: '{}', headers: { 'content-type': 'application/json' } });
      assert.equal(put.status, 200);
      await put.body.dump();
      assert.equal(tokens.length, 2, 'a push needs a token of its own');
      assert.deepEqual(tokens[1]?.scope, ['repository:lib/app:pull,push']);
      const other = await http.request(`${reg.origin}/v2/lib/other/manifests/v1`);
      await other.body.dump();
      assert.equal(tokens.length, 3, 'another repository, another token');
      const again = await http.request(`${reg.origin}/v2/lib/other/manifests/v1`);
      await again.body.dump();
      assert.equal(tokens.length, 3);
      assert.deepEqual(warnings, []);
    } finally {
      await http.close();
    }
  });

  it('parallel requests for one scope share one token request', async () => {
    const http = new Http({ retry: RETRY, credentials: flagCredentials(USER, [reg.host]) });
    try {
      const n = tokens.length;
      const bodies = await Promise.all(
        Array.from({ length: 8 }, async (_, i) => {
          const res = await http.request(`${reg.origin}/v2/par/app/blobs/sha256:${String(i).repeat(64)}`);
          assert.equal(res.status, 200);
          return res.body.text();
        }),
      );
      assert.equal(new Set(bodies).size, 1, `one token for all: ${bodies.join(', ')}`);
      assert.equal(tokens.length, n + 1);
    } finally {
      await http.close();
    }
  });

  it('a registry that refuses even a fresh token: the 401 goes to the caller after one token request', async () => {
    const log: TokenRequest[] = [];
    const tokenFn = tokenEndpoint(log);
    const stubborn: TestServer = await startServer((req, res) => {
      if (req.url?.startsWith('/token')) return tokenFn(req, res);
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${stubborn.origin}/token",service="s"` });
      res.end('still no');
    });
    const http = new Http({ retry: RETRY, credentials: flagCredentials(USER, [stubborn.host]) });
    try {
      const res = await http.request(`${stubborn.origin}/v2/lib/app/manifests/v1`);
      assert.equal(res.status, 401);
      assert.equal(await res.body.text(), 'still no');
      assert.equal(log.length, 1);
      assert.equal(stubborn.seen.filter((s) => s.path.startsWith('/v2/')).length, 2);
    } finally {
      await http.close();
      await stubborn.close();
    }
  });

  it('a 401 from where a redirect led (a CDN) is the caller\'s, and does not change how the registry is spoken to', async () => {
    const cdn = await startServer((_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="cdn"' });
      res.end('cdn says no');
    });
    const log: TokenRequest[] = [];
    const tokenFn = tokenEndpoint(log);
    const registry: TestServer = await startServer((req, res) => {
      if (req.url?.startsWith('/token')) return tokenFn(req, res);
      if (!/^Bearer tok/.test(req.headers.authorization ?? '')) {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${registry.origin}/token",service="s"` });
        res.end();
        return;
      }
      res.writeHead(307, { location: `${cdn.origin}/blob` });
      res.end();
    });
    const http = new Http({ retry: RETRY, credentials: flagCredentials(USER, [registry.host]) });
    try {
      for (let i = 0; i < 2; i++) {
        const res = await http.request(`${registry.origin}/v2/lib/app/blobs/sha256:${'1'.repeat(64)}`);
        assert.equal(res.status, 401);
        assert.equal(res.url.origin, cdn.origin, 'the answer of the CDN');
        assert.equal(await res.body.text(), 'cdn says no');
      }
      const api = registry.seen.filter((s) => s.path.startsWith('/v2/'));
      assert.deepEqual(
        api.map((s) => s.headers.authorization?.split(' ')[0] ?? 'none'),
        ['none', 'Bearer', 'Bearer'],
        'the registry stays on its bearer token: no basic credentials after the CDN asked for them',
      );
      assert.equal(log.length, 1);
      for (const s of cdn.seen) assert.equal(s.headers.authorization, undefined);
    } finally {
      await http.close();
      await registry.close();
      await cdn.close();
    }
  });

  it('a token server that refuses the credentials fails with an AuthError naming it', async () => {
    const http = new Http({ retry: RETRY, credentials: flagCredentials({ username: 'ops', password: 'wrong' }, [reg.host]) });
    try {
      await assert.rejects(http.request(`${reg.origin}/v2/lib/app/manifests/v1`), (e: unknown) => {
        assert.ok(e instanceof AuthError, String(e));
        assert.ok(e.message.includes(`token server ${reg.origin} refused the credentials`), e.message);
        return true;
      });
    } finally {
      await http.close();
    }
  });
});

describe('credentials reach a token realm only where allowed', () => {
  it('a plain-HTTP realm on another port gets an anonymous token request, and a warning names both hosts', async () => {
    const log: TokenRequest[] = [];
    const tokenServer = await startServer(tokenEndpoint(log));
    const reg = await startServer(bearerRegistry(() => `${tokenServer.origin}/token`));
    const warnings: string[] = [];
    const http = new Http({ retry: RETRY, credentials: flagCredentials(USER, [reg.host]), warn: (m) => warnings.push(m) });
    try {
      const res = await http.request(`${reg.origin}/v2/lib/app/manifests/v1`);
      assert.equal(res.status, 200);
      assert.match(await res.body.text(), /-anon$/);
      const res2 = await http.request(`${reg.origin}/v2/lib/b/manifests/v1`);
      await res2.body.dump();
      assert.equal(log.length, 2);
      for (const t of log) assert.equal(t.authorization, undefined, 'no credentials to the realm');
      assert.equal(warnings.length, 1, `warned once: ${warnings.join(' | ')}`);
      assert.ok(warnings[0]?.includes(reg.host) && warnings[0].includes(tokenServer.host), warnings[0]);
      assert.match(warnings[0] ?? '', /plain HTTP/);
    } finally {
      await http.close();
      await reg.close();
      await tokenServer.close();
    }
  });

  describe('over HTTPS', () => {
    let caFile: string;
    let tokenByName: TestServer;
    let tokenByIp: TestServer;
    let reg: TestServer;
    let realm = '';
    const log: TokenRequest[] = [];
    before(async () => {
      const dir = await makeTempDir('airlock-auth-tls-');
      const ca = await makeCA(dir);
      const cert = await makeServerCert(dir, ca);
      caFile = path.join(dir, 'ca.crt');
      tokenByName = await startServer(tokenEndpoint(log), cert, 'localhost');
      tokenByIp = await startServer(tokenEndpoint(log), cert);
      reg = await startServer(bearerRegistry(() => realm), cert);
    });
    after(async () => {
      await reg?.close();
      await tokenByName?.close();
      await tokenByIp?.close();
    });

    it('a realm on another port of the same host gets the credentials', async () => {
      realm = `${tokenByIp.origin}/token`;
      const warnings: string[] = [];
      const http = new Http({ retry: RETRY, settings: () => ({ caFile }), credentials: flagCredentials(USER, [reg.host]), warn: (m) => warnings.push(m) });
      try {
        const res = await http.request(`${reg.origin}/v2/lib/app/manifests/v1`);
        assert.equal(res.status, 200);
        assert.match(await res.body.text(), /-user$/);
        assert.equal(log.at(-1)?.authorization, BASIC);
        assert.deepEqual(warnings, []);
      } finally {
        await http.close();
      }
    });

    it('a realm on another host name (localhost for 127.0.0.1) is asked anonymously, with a warning', async () => {
      realm = `${tokenByName.origin}/token`;
      const warnings: string[] = [];
      const http = new Http({ retry: RETRY, settings: () => ({ caFile }), credentials: flagCredentials(USER, [reg.host]), warn: (m) => warnings.push(m) });
      try {
        const n = log.length;
        const res = await http.request(`${reg.origin}/v2/lib/app/manifests/v1`);
        assert.equal(res.status, 200);
        assert.match(await res.body.text(), /-anon$/);
        assert.equal(log.length, n + 1);
        assert.equal(log.at(-1)?.authorization, undefined);
        assert.equal(warnings.length, 1);
        assert.ok(warnings[0]?.includes(reg.host) && warnings[0].includes(tokenByName.host), warnings[0]);
        assert.match(warnings[0] ?? '', /another host/);
      } finally {
        await http.close();
      }
    });
  });
});

describe('the realm rules (realmRefusal)', () => {
  const ok = async (registry: string, realm: string) => assert.equal(await realmRefusal(new URL(registry), new URL(realm)), undefined, `${registry} → ${realm} should be allowed`);
  const no = async (registry: string, realm: string, why: RegExp) => {
    const r = await realmRefusal(new URL(registry), new URL(realm));
    assert.ok(r !== undefined, `${registry} → ${realm} should be refused`);
    assert.match(r, why);
  };

  it('the same host or its registrable domain over HTTPS', async () => {
    await ok('https://registry-1.docker.io', 'https://auth.docker.io/token');
    await ok('https://ghcr.io', 'https://ghcr.io/token');
    await ok('https://registry.example.com:5000', 'https://registry.example.com/token');
    await ok('https://quay.io', 'https://auth.quay.io/v2/auth');
    await ok('https://registry.example.co.uk', 'https://auth.example.co.uk/token');
    await ok('https://REGISTRY.example.com', 'https://registry.EXAMPLE.com/token');
  });

  it('another domain is refused, public and private suffixes included', async () => {
    await no('https://registry-1.docker.io', 'https://evil.example/token', /another host than registry-1\.docker\.io/);
    await no('https://registry.example.com', 'https://example.org/token', /another host/);
    await no('https://a.example.co.uk', 'https://b.other.co.uk/token', /another host/);
    await no('https://alice.github.io', 'https://mallory.github.io/token', /another host/);
    await no('https://registry.example.com', 'https://example.com.evil.net/token', /another host/);
  });

  it('an IP address or a single-label name shares only with itself', async () => {
    await ok('https://10.0.0.5:5000', 'https://10.0.0.5:5001/token');
    await no('https://10.0.0.5', 'https://10.0.0.6/token', /another host/);
    await no('https://10.0.0.5', 'https://0.5/token', /another host/);
    await ok('https://[fd00::1]:5000', 'https://[fd00::1]/token');
    await no('https://[fd00::1]', 'https://[fd00::2]/token', /another host/);
    await ok('https://registry:5000', 'https://registry/token');
    await no('https://registry', 'https://auth/token', /another host/);
    await no('https://registry', 'https://auth.registry/token', /another host/);
    await no('https://127.0.0.1:5000', 'https://localhost:5000/token', /another host/);
  });

  it('plain HTTP only on the registry own host:port, and only when the registry is plain HTTP', async () => {
    await ok('http://registry.local:5000', 'http://registry.local:5000/token');
    await ok('http://127.0.0.1:5000', 'http://127.0.0.1:5000/auth/token');
    await no('http://registry.local:5000', 'http://registry.local:5001/token', /plain HTTP/);
    await no('http://registry.local', 'http://auth.registry.local/token', /plain HTTP/);
    await no('https://registry.local', 'http://registry.local/token', /plain HTTP/);
    await no('https://registry.local:443', 'http://registry.local:443/token', /plain HTTP/);
    // A plain-HTTP registry may still send its credentials to an HTTPS realm on its domain.
    await ok('http://registry.example.com', 'https://auth.example.com/token');
  });

  it('a realm that is not HTTP(S) is refused', async () => {
    await no('https://registry.example.com', 'ftp://registry.example.com/token', /not HTTP\(S\)/);
  });
});

describe('scopesFor', () => {
  it('pull for reads, pull,push for writes', () => {
    assert.deepEqual(scopesFor('GET', '/v2/library/alpine/manifests/3.20'), ['repository:library/alpine:pull']);
    assert.deepEqual(scopesFor('HEAD', '/v2/a/b/c/blobs/sha256:abc'), ['repository:a/b/c:pull']);
    assert.deepEqual(scopesFor('GET', '/v2/app/tags/list?n=100'), ['repository:app:pull']);
    assert.deepEqual(scopesFor('GET', '/v2/app/referrers/sha256:abc'), ['repository:app:pull']);
    for (const m of ['PUT', 'POST', 'PATCH', 'DELETE', 'put']) assert.deepEqual(scopesFor(m, '/v2/team/app/manifests/v1'), ['repository:team/app:pull,push'], m);
    assert.deepEqual(scopesFor('POST', '/v2/team/app/blobs/uploads/'), ['repository:team/app:pull,push']);
    assert.deepEqual(scopesFor('PATCH', '/v2/team/app/blobs/uploads/0b6c?_state=x'), ['repository:team/app:pull,push']);
  });

  it('a cross-repository mount also pulls from its source', () => {
    assert.deepEqual(scopesFor('POST', '/v2/team/app/blobs/uploads/?mount=sha256:abc&from=library/alpine'), ['repository:team/app:pull,push', 'repository:library/alpine:pull']);
    assert.deepEqual(scopesFor('POST', '/v2/team/app/blobs/uploads/?from=library/alpine'), ['repository:team/app:pull,push'], 'from without mount is no mount');
  });

  it('the catalog, and nothing for other paths', () => {
    assert.deepEqual(scopesFor('GET', '/v2/_catalog?n=10'), ['registry:catalog:*']);
    assert.deepEqual(scopesFor('GET', '/v2/'), []);
    assert.deepEqual(scopesFor('GET', '/token'), []);
    assert.deepEqual(scopesFor('GET', '/downloads/file.tar.gz'), []);
  });
});

describe('parseChallenge', () => {
  it('WWW-Authenticate challenges, quoted and token values', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"'), {
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:samalba/my-app:pull,push' },
    });
    assert.deepEqual(parseChallenge('Basic realm="Registry Realm"'), { scheme: 'basic', params: { realm: 'Registry Realm' } });
    assert.deepEqual(parseChallenge('Bearer realm=https://ghcr.io/token, service=ghcr.io'), { scheme: 'bearer', params: { realm: 'https://ghcr.io/token', service: 'ghcr.io' } });
    assert.deepEqual(parseChallenge('Bearer realm="a\\"b"'), { scheme: 'bearer', params: { realm: 'a"b' } });
    assert.deepEqual(parseChallenge('BEARER Realm="r"'), { scheme: 'bearer', params: { realm: 'r' } });
    assert.equal(parseChallenge(''), undefined);
  });
});
