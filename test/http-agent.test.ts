// The connection layer: which scheme a host is spoken to with, TLS settings
// chosen per origin, and the user agent every server sees.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { isLoopbackHost, schemeFor } from '../src/http/agent.js';
import { Http } from '../src/http/client.js';
import { VERSION } from '../src/cli/version.js';
import { makeTempDir } from './support/proc.js';
import { startServer, type TestServer } from './support/httpserver.js';
import { makeCA, makeServerCert } from './support/tls.js';

const RETRY = { baseDelayMs: 5, maxDelayMs: 20 };

describe('schemes', () => {
  it('plain HTTP only for loopback unless told otherwise', () => {
    for (const h of ['localhost', 'localhost:5000', '127.0.0.1', '127.1.2.3:80', '[::1]:5000', '[::1]']) assert.ok(isLoopbackHost(h), h);
    for (const h of ['registry.local', '10.0.0.1:5000', '127.0.0.1.nip.io', 'localhost.example', '128.0.0.1', '[::2]:5000', 'localhost:5000:1']) assert.ok(!isLoopbackHost(h), h);
    assert.equal(schemeFor('127.0.0.1:5000'), 'http');
    assert.equal(schemeFor('localhost:5000'), 'http');
    assert.equal(schemeFor('127.0.0.1:5000', { caFile: 'ca.pem' }), 'https');
    assert.equal(schemeFor('127.0.0.1:5000', { insecure: true }), 'https');
    assert.equal(schemeFor('registry.local'), 'https');
    assert.equal(schemeFor('registry.local', { plainHttp: true }), 'http');
    assert.equal(schemeFor('registry.local', { plainHttp: true, caFile: 'ca.pem' }), 'http', 'plainHttp wins');
  });
});

describe('user agent', () => {
  let srv: TestServer;
  before(async () => {
    srv = await startServer((req, res) => {
      if (req.url?.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"token":"t"}');
        return;
      }
      if (req.url?.startsWith('/v2/') && req.headers.authorization !== 'Bearer t') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${srv.origin}/token"` });
        res.end();
        return;
      }
      res.writeHead(200);
      res.end(String(req.headers['user-agent']));
    });
  });
  after(async () => srv?.close());

  it('every server sees airlock/VERSION by default, token requests included', async () => {
    const http = new Http({ retry: RETRY });
    try {
      const res = await http.request(`${srv.origin}/v2/a/manifests/1`);
      assert.equal(await res.body.text(), `airlock/${VERSION}`);
      const token = srv.seen.find((s) => s.path.startsWith('/token'));
      assert.equal(token?.headers['user-agent'], `airlock/${VERSION}`);
      for (const s of srv.seen) assert.match(String(s.headers['user-agent']), /^airlock\/\d+\.\d+\.\d+/);
    } finally {
      await http.close();
    }
  });

  it('the one given to Http, unless the request sets its own', async () => {
    const http = new Http({ retry: RETRY, userAgent: 'airlock/9.9.9' });
    try {
      assert.equal(await (await http.request(`${srv.origin}/x`)).body.text(), 'airlock/9.9.9');
      assert.equal(await (await http.request(`${srv.origin}/x`, { headers: { 'User-Agent': 'curl/8' } })).body.text(), 'curl/8');
    } finally {
      await http.close();
    }
  });
});

describe('TLS per origin', () => {
  let srv: TestServer;
  let caFile: string;
  before(async () => {
    const dir = await makeTempDir('airlock-agent-tls-');
    const ca = await makeCA(dir);
    caFile = path.join(dir, 'ca.crt');
    srv = await startServer((_req, res) => {
      res.writeHead(200);
      res.end('tls');
    }, await makeServerCert(dir, ca));
  });
  after(async () => srv?.close());

  it('the CA given for the host is trusted', async () => {
    const http = new Http({ retry: RETRY, settings: (h) => (h === srv.host ? { caFile } : {}) });
    try {
      assert.equal(await (await http.request(`${srv.origin}/`)).body.text(), 'tls');
    } finally {
      await http.close();
    }
  });

  it('without it (or with it for another host) the certificate is refused, at once', async () => {
    for (const settings of [undefined, (h: string) => (h === `127.0.0.1:${srv.port + 1}` ? { caFile } : {})]) {
      const http = new Http({ retry: { baseDelayMs: 1000, maxDelayMs: 1000 }, ...(settings && { settings }) });
      try {
        const started = Date.now();
        await assert.rejects(http.request(`${srv.origin}/`), (e: unknown) => {
          const code = String((e as { code?: string }).code);
          assert.match(code, /CERT|SIGNATURE|ISSUER/, code);
          return true;
        });
        assert.ok(Date.now() - started < 900, 'not retried');
      } finally {
        await http.close();
      }
    }
  });

  it('insecure skips verification for that host', async () => {
    const http = new Http({ retry: RETRY, settings: () => ({ insecure: true }) });
    try {
      assert.equal(await (await http.request(`${srv.origin}/`)).body.text(), 'tls');
    } finally {
      await http.close();
    }
  });
});
