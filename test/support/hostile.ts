/**
 * A small hostile registry for tests: it serves one tiny OCI image per
 * repository, and per repository misbehaves in one named way (challenges for
 * credentials meant for another host, names a foreign token realm, redirects
 * blobs to another origin, never ends a layer, sends a huge or lying
 * manifest). It records every request's headers, so a test can assert what
 * airlock sent it. It runs beside the real docker-registry, never instead of it.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type Mode = 'ok' | 'escapes' | 'basic' | 'bearer-foreign' | 'redirect-blobs' | 'endless-layer' | 'short-length' | 'huge-manifest' | 'huge-manifest-chunked' | 'lying-manifest';

export interface Seen {
  method: string;
  path: string;
  authorization?: string;
}

export interface HostileServer {
  host: string;
  url: string;
  seen: Seen[];
  stop(): Promise<void>;
}

export interface HostileRegistry extends HostileServer {
  /** `HOST/<mode>:1.0` for each mode. */
  ref(mode: Mode): string;
  /** The layer of every image: its digest and size. */
  layer: { digest: string; size: number };
  /** Servers the registry points at (a token realm, a blob CDN), recording what they received. */
  realm: HostileServer;
  cdn: HostileServer;
}

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function listen(handler: (req: IncomingMessage, res: ServerResponse, seen: Seen[]) => void): Promise<HostileServer> {
  const seen: Seen[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    const auth = req.headers.authorization;
    seen.push({ method: req.method ?? 'GET', path: req.url ?? '/', ...(auth !== undefined && { authorization: auth }) });
    handler(req, res, seen);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    seen,
    stop: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

export async function startHostileRegistry(): Promise<HostileRegistry> {
  const layer = randomBytes(1024);
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(layer), size: layer.length }],
    }),
  );
  const blobs = new Map([
    [digestOf(layer), layer],
    [digestOf(config), config],
  ]);

  const realm = await listen((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token: 'anonymous-token', expires_in: 300 }));
  });
  const cdn = await listen((req, res) => {
    const blob = blobs.get(new URL(req.url ?? '/', 'http://x').pathname.slice(1));
    if (!blob) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': String(blob.length) });
    res.end(blob);
  });

  const registry = await listen((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname === '/v2/' || u.pathname === '/v2') return void res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
    const m = /^\/v2\/([a-z-]+)\/(manifests|blobs)\/(.+)$/.exec(u.pathname);
    if (!m) return void res.writeHead(404).end();
    const [, mode, kind, ref] = m as unknown as [string, Mode, string, string];
    if (mode === 'basic') {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"', 'content-type': 'application/json' });
      return void res.end('{"errors":[{"code":"UNAUTHORIZED","message":"give me your password"}]}');
    }
    if (mode === 'bearer-foreign' && req.headers.authorization !== 'Bearer anonymous-token') {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm.url}/token",service="hostile"` });
      return void res.end();
    }
    if (mode === 'escapes') {
      // An error text that would rewrite the operator's screen if printed raw.
      res.writeHead(404, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: '\x1b[2K\rOK bundle.tar: signature valid\x07' }] }));
    }
    if (kind === 'manifests') {
      if (mode === 'huge-manifest' || mode === 'huge-manifest-chunked') {
        const size = 20 * 1024 * 1024;
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', ...(mode === 'huge-manifest' && { 'content-length': String(size) }) });
        if (req.method === 'HEAD') return void res.end();
        let sent = 0;
        const pump = () => {
          while (sent < size) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.end();
        };
        return pump();
      }
      const bytes = mode === 'lying-manifest' ? Buffer.from(manifest.toString().replace('"schemaVersion":2', '"schemaVersion": 2')) : manifest;
      // A lying registry announces the digest of the bytes it should have sent.
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': String(bytes.length), 'docker-content-digest': digestOf(manifest) });
      return void res.end(req.method === 'HEAD' ? undefined : bytes);
    }
    const blob = blobs.get(ref);
    if (!blob) return void res.writeHead(404).end();
    if (mode === 'redirect-blobs') {
      // Demands credentials, then sends the blob to another origin: they must not follow it there.
      if (!req.headers.authorization) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="hostile"' }).end();
      return void res.writeHead(307, { location: `${cdn.url}/${ref}` }).end();
    }
    if (mode === 'endless-layer' && blob === layer) {
      // Chunked, and never ends: bytes until the client hangs up.
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = randomBytes(16 * 1024);
      const pump = () => {
        while (!res.destroyed) if (!res.write(chunk)) return void res.once('drain', pump);
      };
      res.on('close', () => undefined);
      return pump();
    }
    if (mode === 'short-length' && blob === layer) {
      res.writeHead(200, { 'content-length': String(blob.length - 100) });
      return void res.end(blob.subarray(0, blob.length - 100));
    }
    res.writeHead(200, { 'content-length': String(blob.length) });
    res.end(req.method === 'HEAD' ? undefined : blob);
  });

  return {
    ...registry,
    ref: (mode) => `${registry.host}/${mode}:1.0`,
    layer: { digest: digestOf(layer), size: layer.length },
    realm,
    cdn,
    stop: async () => {
      await Promise.all([registry.stop(), realm.stop(), cdn.stop()]);
    },
  };
}
