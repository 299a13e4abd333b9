// The minimum rate against real servers: a body that trickles (a byte now and
// then, never idle long enough for the body timeout) fails with
// AIRLOCK_SLOW_BODY within a few windows; a fast body passes; a consumer that
// holds the body back (backpressure) is not taken for a slow server.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { Http, type HttpResponse } from '../src/http/client.js';
import { isRetryable, SlowBodyError } from '../src/http/errors.js';
import { pour, startServer, type TestServer } from './support/httpserver.js';

const MiB = 1024 * 1024;

/** One byte every `everyMs`, up to `total` bytes, until the client goes away. */
function trickle(res: ServerResponse, total: number, everyMs: number): void {
  let sent = 0;
  const timer = setInterval(() => {
    if (res.destroyed || sent >= total) {
      clearInterval(timer);
      if (!res.destroyed) res.end();
      return;
    }
    sent++;
    res.write('x');
  }, everyMs);
  res.on('close', () => clearInterval(timer));
}

async function count(res: HttpResponse, pauseAfterFirstMs = 0): Promise<{ bytes: number; error?: unknown }> {
  let bytes = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      if (bytes === 0 && pauseAfterFirstMs > 0) await new Promise((r) => setTimeout(r, pauseAfterFirstMs));
      bytes += chunk.length;
    }
    return { bytes };
  } catch (error) {
    return { bytes, error };
  }
}

describe('minimum rate', () => {
  let srv: TestServer;
  let http: Http;
  before(async () => {
    srv = await startServer(async (req, res) => {
      switch (req.url) {
        case '/trickle':
          res.writeHead(200, { 'content-length': 1000 });
          res.flushHeaders();
          trickle(res, 1000, 200);
          return;
        case '/fast':
          res.writeHead(200, { 'content-length': 2 * MiB });
          await pour(res, 2 * MiB);
          return;
        case '/big':
          res.writeHead(200, { 'content-length': 16 * MiB });
          await pour(res, 16 * MiB);
          return;
        default:
          res.writeHead(404);
          res.end();
      }
    });
    http = new Http({ retry: { baseDelayMs: 5, maxDelayMs: 20 }, rateWindowMs: 500, minBytesPerWindow: 100 });
  });
  after(async () => {
    await http?.close();
    await srv?.close();
  });

  it('a body trickling a byte every 200 ms fails with AIRLOCK_SLOW_BODY within a couple of seconds', async () => {
    const started = Date.now();
    const res = await http.request(`${srv.origin}/trickle`, { item: 'slow.tar.gz' });
    assert.equal(res.status, 200);
    const got = await count(res);
    const elapsed = Date.now() - started;
    assert.ok(got.error instanceof SlowBodyError, String(got.error));
    assert.equal(got.error.code, 'AIRLOCK_SLOW_BODY');
    assert.match(got.error.message, /^slow\.tar\.gz: fewer than 100 bytes in 0\.5 s/);
    assert.equal(got.error.origin, srv.origin);
    assert.ok(isRetryable(got.error), 'an item-level loop may resume it');
    assert.ok(got.bytes < 20, `received ${got.bytes}`);
    assert.ok(elapsed < 3000, `failed after ${elapsed} ms`);
  });

  it('a fast body passes', async () => {
    const res = await http.request(`${srv.origin}/fast`);
    const got = await count(res);
    assert.equal(got.error, undefined, String(got.error));
    assert.equal(got.bytes, 2 * MiB);
  });

  it('a consumer that pauses for several windows is not counted as slow', async () => {
    const res = await http.request(`${srv.origin}/big`);
    const started = Date.now();
    const got = await count(res, 1600);
    assert.equal(got.error, undefined, String(got.error));
    assert.equal(got.bytes, 16 * MiB);
    assert.ok(Date.now() - started >= 1500, 'it did pause');
  });

  it('off when minBytesPerWindow is 0', async () => {
    const off = new Http({ rateWindowMs: 200, minBytesPerWindow: 0 });
    try {
      const res = await off.request(`${srv.origin}/trickle`);
      // Read a little over a second of trickle (several windows), then stop.
      let bytes = 0;
      const until = Date.now() + 1100;
      for await (const chunk of res.body as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        if (Date.now() > until) break;
      }
      assert.ok(bytes >= 3, `received ${bytes}`);
    } finally {
      await off.close();
    }
  });
});
