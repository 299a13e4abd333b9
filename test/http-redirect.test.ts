// The redirect interceptor against real servers: credentials stay on their
// origin, HTTPS never falls back to plain HTTP, loops end naming the origin,
// the answering URL is reported, and 303 turns a POST into a GET.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { Readable } from 'node:stream';
import { Http } from '../src/http/client.js';
import { flagCredentials } from '../src/http/credentials.js';
import { describeNetworkError, RedirectError } from '../src/http/errors.js';
import { makeTempDir } from './support/proc.js';
import { startServer, type TestServer } from './support/httpserver.js';
import { makeCA, makeServerCert } from './support/tls.js';

const RETRY = { baseDelayMs: 5, maxDelayMs: 20 };

describe('redirects between plain HTTP servers', () => {
  let a: TestServer;
  let b: TestServer;
  let http: Http;
  before(async () => {
    b = await startServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`b:${req.method}:${req.url}`);
    });
    a = await startServer((req, res, seen) => {
      const u = new URL(req.url ?? '/', a.origin);
      // Basic auth on every path of A: a request without credentials gets a challenge.
      if (!req.headers.authorization) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="a"' });
        res.end();
        return;
      }
      switch (u.pathname) {
        case '/cross':
          res.writeHead(307, { location: `${b.origin}/landed?x=1` });
          res.end('moved');
          return;
        case '/same':
          res.writeHead(307, { location: '/final' });
          res.end();
          return;
        case '/final':
          res.writeHead(200);
          res.end(`a:${req.method}:${seen.body.toString()}`);
          return;
        case '/loop':
          res.writeHead(302, { location: `/loop?n=${Number(u.searchParams.get('n') ?? 0) + 1}` });
          res.end();
          return;
        case '/post':
          res.writeHead(303, { location: '/result' });
          res.end();
          return;
        case '/result':
          res.writeHead(200);
          res.end(`${req.method}:${seen.body.length}:${req.headers['content-type'] ?? '-'}`);
          return;
        case '/ftp':
          res.writeHead(302, { location: 'ftp://127.0.0.1/file' });
          res.end();
          return;
        case '/keep-post':
          res.writeHead(307, { location: '/final' });
          res.end();
          return;
        default:
          res.writeHead(404);
          res.end();
      }
    });
    // Credentials for A only, handed out by the auth interceptor after A's challenge.
    http = new Http({ retry: RETRY, credentials: flagCredentials({ username: 'u', password: 'secret' }, [a.host]) });
  });
  after(async () => {
    await http?.close();
    await a?.close();
    await b?.close();
  });

  it('a 307 to another origin arrives there without Authorization or Cookie', async () => {
    const res = await http.request(`${a.origin}/cross`, { headers: { cookie: 'session=1' } });
    assert.equal(res.status, 200);
    assert.equal(await res.body.text(), 'b:GET:/landed?x=1');
    const atA = a.seen.filter((s) => s.path === '/cross');
    assert.ok(atA.some((s) => s.headers.authorization === `Basic ${Buffer.from('u:secret').toString('base64')}`), 'A got its credentials');
    const atB = b.seen.find((s) => s.path === '/landed?x=1');
    assert.ok(atB, 'B was asked');
    assert.equal(atB.headers.authorization, undefined, 'no Authorization crossed to B');
    assert.equal(atB.headers.cookie, undefined, 'no Cookie crossed to B');
    assert.equal(res.url.href, `${b.origin}/landed?x=1`, 'res.url is the URL that answered');
  });

  it('a same-origin redirect keeps Authorization, and res.url is the final URL', async () => {
    const res = await http.request(`${a.origin}/same`);
    assert.equal(res.status, 200);
    assert.equal(await res.body.text(), 'a:GET:');
    const final = a.seen.filter((s) => s.path === '/final').at(-1);
    assert.match(String(final?.headers.authorization), /^Basic /);
    assert.equal(res.url.href, `${a.origin}/final`);
  });

  it('a 307 keeps the method and a replayable body', async () => {
    const res = await http.request(`${a.origin}/keep-post`, { method: 'POST', body: 'payload', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 200);
    assert.equal(await res.body.text(), 'a:POST:payload');
  });

  it('a 307 after a streamed body goes to the caller (the body cannot be sent again)', async () => {
    const res = await http.request(`${a.origin}/keep-post`, { method: 'PUT', body: Readable.from([Buffer.from('stream')]) });
    // A's basic challenge is known from the tests above, so the credentials go with the first attempt.
    assert.equal(res.status, 307);
    assert.equal(res.headers.location, '/final');
    await res.body.dump();
  });

  it('303 after a POST becomes a GET without the body', async () => {
    const res = await http.request(`${a.origin}/post`, { method: 'POST', body: '{"a":1}', headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 200);
    assert.equal(await res.body.text(), 'GET:0:-');
    assert.equal(res.url.href, `${a.origin}/result`);
  });

  it('too many redirects fail naming the origin', async () => {
    const err = await http.request(`${a.origin}/loop`).then(
      () => assert.fail('followed a loop'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof RedirectError, String(err));
    assert.equal(err.code, 'AIRLOCK_REDIRECT');
    assert.match(err.message, /more than 5 redirects/);
    assert.equal(err.origin, a.origin);
    assert.ok(describeNetworkError(err).includes(a.origin), describeNetworkError(err));
    const hops = a.seen.filter((s) => s.path.startsWith('/loop') && s.headers.authorization).length;
    assert.equal(hops, 6, 'the first request and five redirects, then it stops');
  });

  it('maxRedirects is honoured', async () => {
    const two = new Http({ retry: RETRY, maxRedirects: 2, credentials: flagCredentials({ username: 'u', password: 'secret' }, [a.host]) });
    try {
      await assert.rejects(two.request(`${a.origin}/loop`), /more than 2 redirects/);
    } finally {
      await two.close();
    }
  });

  it('a redirect to a non-HTTP(S) URL is refused', async () => {
    await assert.rejects(http.request(`${a.origin}/ftp`), (e: unknown) => e instanceof RedirectError && /refusing a redirect to ftp:/.test(e.message));
  });
});

describe('HTTPS never falls back to plain HTTP', () => {
  let tls: TestServer;
  let plain: TestServer;
  let caFile: string;
  before(async () => {
    const dir = await makeTempDir('airlock-redirect-tls-');
    const ca = await makeCA(dir);
    const cert = await makeServerCert(dir, ca);
    caFile = path.join(dir, 'ca.crt');
    plain = await startServer((_req, res) => {
      res.writeHead(200);
      res.end('plain');
    });
    tls = await startServer((req, res) => {
      if (req.url === '/down') {
        res.writeHead(302, { location: `${plain.origin}/x` });
        res.end();
      } else if (req.url === '/up') {
        res.writeHead(302, { location: '/ok' });
        res.end();
      } else {
        res.writeHead(200);
        res.end('tls');
      }
    }, cert);
  });
  after(async () => {
    await tls?.close();
    await plain?.close();
  });

  it('an HTTPS → HTTP redirect is refused and the plain server is never asked', async () => {
    const http = new Http({ retry: RETRY, settings: () => ({ caFile }) });
    try {
      const ok = await http.request(`${tls.origin}/up`);
      assert.equal(await ok.body.text(), 'tls', 'the TLS server itself works');
      const err = await http.request(`${tls.origin}/down`).then(
        () => assert.fail('followed HTTPS → HTTP'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof RedirectError, String(err));
      assert.match(err.message, /from HTTPS to plain HTTP/);
      assert.ok(err.message.includes(plain.origin), err.message);
      assert.equal(err.origin, tls.origin);
      assert.equal(plain.seen.length, 0);
    } finally {
      await http.close();
    }
  });
});
