/**
 * Small real HTTP(S) servers on 127.0.0.1 for the network-layer tests: each
 * records what it was asked (method, path, headers, body) and answers with a
 * handler the test writes. Bound to port 0, so the port is free by
 * construction.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { readFile } from 'node:fs/promises';

export interface Seen {
  method: string;
  /** Path and query as sent. */
  path: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export type Handler = (req: IncomingMessage, res: ServerResponse, seen: Seen) => unknown;

export interface TestServer {
  /** `http(s)://NAME:PORT` (NAME 127.0.0.1 unless told otherwise) */
  origin: string;
  /** `NAME:PORT` */
  host: string;
  port: number;
  /** Every request, in order of arrival (after its body was read). */
  seen: Seen[];
  close(): Promise<void>;
}

export interface TlsFiles {
  cert: string;
  key: string;
}

/** Starts a server whose handler sees each request once its body has been read whole; `name` is the host name to listen on and to put in `origin`. */
export async function startServer(handler: Handler, tls?: TlsFiles, name = '127.0.0.1'): Promise<TestServer> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const s: Seen = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(s);
      Promise.resolve(handler(req, res, s)).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(599);
        res.end(String(err));
      });
    });
  };
  const server = tls
    ? createHttpsServer({ cert: await readFile(tls.cert), key: await readFile(tls.key) }, listener)
    : createServer(listener);
  server.on(tls ? 'secureConnection' : 'connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, name, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    origin: `${tls ? 'https' : 'http'}://${name}:${port}`,
    host: `${name}:${port}`,
    port,
    seen,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Writes `total` bytes (Infinity: forever) in chunks, waiting for the socket to drain; resolves with what was written when done or when the client went away. */
export function pour(res: ServerResponse, total: number, chunk = Buffer.alloc(64 * 1024, 0x61)): Promise<number> {
  return new Promise((resolve) => {
    let written = 0;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      resolve(written);
    };
    res.on('close', finish);
    const more = () => {
      while (!done && written < total) {
        const n = Math.min(chunk.length, total - written);
        written += n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          res.once('drain', more);
          return;
        }
      }
      if (!done && written >= total) {
        res.end();
        finish();
      }
    };
    more();
  });
}
