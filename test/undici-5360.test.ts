// nodejs/undici#5360: a server that sends the body and then FIN while the
// consumer holds the response unread (the HTTP/1 parser paused by
// backpressure) crashed the process with an uncatchable
// `AssertionError: assert(!this.paused)` (undici 7.30.2: every run). Fixed in
// undici 8 (#5389, hardened in #5474). Runs through airlock's own dispatcher,
// for every body framing, many times; a regression kills this test file.
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Http } from '../src/http/client.js';

const BODY = randomBytes(256 * 1024);
const DIGEST = createHash('sha256').update(BODY).digest('hex');
let server: net.Server;
let base: string;

before(async () => {
  server = net.createServer((sock) => {
    sock.once('data', (req) => {
      const framing = /GET \/(\w+)/.exec(req.toString('latin1'))?.[1];
      if (framing === 'length') {
        sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${BODY.length}\r\nConnection: close\r\n\r\n`);
        sock.end(BODY);
      } else if (framing === 'chunked') {
        sock.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n');
        sock.write(`${BODY.length.toString(16)}\r\n`);
        sock.write(BODY);
        sock.end('\r\n0\r\n\r\n');
      } else {
        // HTTP/1.0 style: the end of the body is the FIN.
        sock.write('HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n');
        sock.end(BODY);
      }
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => new Promise<void>((r) => server.close(() => r())));

for (const framing of ['length', 'chunked', 'eof'] as const) {
  it(`a ${framing}-framed body and FIN while the consumer is paused: complete, 30 times`, async () => {
    const http = new Http({ retry: { attempts: 1 } });
    try {
      for (let i = 0; i < 30; i++) {
        const res = await http.request(`${base}/${framing}`, { size: BODY.length });
        // Hold the response unread while the server sends everything and closes.
        await new Promise((r) => setTimeout(r, 20));
        const got = Buffer.from(await res.body.arrayBuffer());
        assert.equal(createHash('sha256').update(got).digest('hex'), DIGEST, `run ${i}: every byte, in order`);
      }
    } finally {
      await http.close();
    }
  });
}
