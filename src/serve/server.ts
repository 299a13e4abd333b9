// `airlock serve`: a bundle as a read-only OCI registry (pull API) and a file
// server, straight from the tarball with positioned reads. The signature is
// checked at start and the headers indexed; every entry is hashed whole once
// before its first byte goes out, and full reads are hashed again while they
// stream, so a byte that does not match the signed digest is never served.
import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { BLOBS_PREFIX, FILES_PREFIX } from '../bundle/format.js';
import type { BundleReader } from '../bundle/reader.js';
import { falcoIndexEntries, falcoIndexYaml } from '../emit/falco-index.js';
import { Catalog, type Repo } from './catalog.js';
import { parseRange } from './range.js';

export interface ServeOptions {
  readonly reader: BundleReader;
  readonly listen: { host: string; port: number };
  readonly filesListen: { host: string; port: number };
  readonly tls?: { cert: string; key: string };
  readonly log: (line: string) => void;
}

export interface Serving {
  readonly registryUrl: string;
  readonly filesUrl: string;
  close(): Promise<void>;
}

const NAME_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$/;

class EntryGuard {
  private readonly checks = new Map<string, Promise<void>>();
  constructor(private readonly reader: BundleReader) {}

  /** Resolves once the entry hashed to its signed digest; the same answer for every later caller. */
  ensure(name: string): Promise<void> {
    let p = this.checks.get(name);
    if (!p) {
      p = this.reader.verifyEntry(name);
      this.checks.set(name, p);
      p.catch(() => undefined);
    }
    return p;
  }

  markVerified(name: string): void {
    this.checks.set(name, Promise.resolve());
  }
}

function ociError(res: ServerResponse, status: number, code: string, message: string, head: boolean): void {
  const body = Buffer.from(JSON.stringify({ errors: [{ code, message, detail: null }] }));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(body.length), 'docker-distribution-api-version': 'registry/2.0' });
  res.end(head ? undefined : body);
}

/** Sends [start, end] of an entry; a whole-entry read is hashed again and cut off if it does not match. */
async function sendEntry(reader: BundleReader, name: string, res: ServerResponse, start: number, end: number, whole: boolean): Promise<void> {
  await pipeline(Readable.from(whole ? reader.stream(name) : reader.range(name, start, end + 1)), res);
}

export async function serve(opts: ServeOptions): Promise<Serving> {
  const { reader, log } = opts;
  await reader.scan();
  const catalog = await Catalog.build(reader);
  const guard = new EntryGuard(reader);
  for (const repo of catalog.repos.values()) for (const d of repo.manifests.keys()) guard.markVerified(BLOBS_PREFIX + d.slice(7));
  const files = new Map(reader.index.files.map((f) => [f.path, f]));
  let registryAddr = '';

  const access = (req: IncomingMessage, res: ServerResponse, started: number) => {
    res.on('close', () => {
      const bytes = Number(res.getHeader('content-length') ?? 0);
      log(`${new Date().toISOString()} ${req.socket.remoteAddress ?? '-'} ${req.method} ${req.url} ${res.statusCode} ${req.method === 'HEAD' ? 0 : bytes} ${Date.now() - started}ms${res.writableFinished ? '' : ' (aborted)'}`);
    });
  };

  const registry = async (req: IncomingMessage, res: ServerResponse) => {
    const head = req.method === 'HEAD';
    const url = new URL(req.url ?? '/', 'http://x');
    const p = safeDecode(url.pathname);
    res.setHeader('docker-distribution-api-version', 'registry/2.0');
    if (p === undefined) return ociError(res, 400, 'NAME_INVALID', 'bad percent-encoding in the path', head);
    if (req.method !== 'GET' && !head) {
      res.setHeader('allow', 'GET, HEAD');
      return ociError(res, 405, 'UNSUPPORTED', 'airlock serve is read-only', head);
    }
    if (p === '/v2/' || p === '/v2') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2' });
      return res.end(head ? undefined : '{}');
    }
    if (p === '/v2/_catalog') {
      const all = [...catalog.repos.keys()].sort();
      return sendJson(res, head, { repositories: page(all, url) }, link(url, all));
    }
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags)\/(.+)$/.exec(p);
    if (!m) return ociError(res, 404, 'NOT_FOUND', 'not a registry API path', head);
    const [, name = '', kind, ref = ''] = m;
    const repo = NAME_RE.test(name) ? catalog.repos.get(name) : undefined;
    if (!repo) return ociError(res, 404, 'NAME_UNKNOWN', `repository ${name} is not in this bundle`, head);
    if (kind === 'tags') {
      if (ref !== 'list') return ociError(res, 404, 'NOT_FOUND', 'not a registry API path', head);
      const tags = [...repo.tags.keys()].sort();
      return sendJson(res, head, { name, tags: page(tags, url) }, link(url, tags));
    }
    if (kind === 'manifests') return manifest(res, head, repo, name, ref, url.searchParams.get('ns'));
    return blob(req, res, head, repo, ref);
  };

  const manifest = async (res: ServerResponse, head: boolean, repo: Repo, name: string, ref: string, ns: string | null) => {
    let digest: string | undefined;
    let mediaType: string | undefined;
    if (ref.startsWith('sha256:')) {
      mediaType = repo.manifests.get(ref);
      if (mediaType) digest = ref;
    } else {
      const list = repo.tags.get(ref) ?? [];
      const pick = list.find((t) => t.upstream === ns) ?? list[0];
      digest = pick?.digest;
      mediaType = pick ? (repo.manifests.get(pick.digest) ?? pick.mediaType) : undefined;
    }
    if (!digest || !mediaType) return ociError(res, 404, 'MANIFEST_UNKNOWN', `manifest ${name}:${ref} is not in this bundle`, head);
    const bytes = await reader.readEntry(BLOBS_PREFIX + digest.slice(7));
    res.writeHead(200, { 'content-type': mediaType, 'content-length': String(bytes.length), 'docker-content-digest': digest, etag: `"${digest}"` });
    res.end(head ? undefined : bytes);
  };

  const blob = async (req: IncomingMessage, res: ServerResponse, head: boolean, repo: Repo, digest: string) => {
    if (!repo.blobs.has(digest) && !repo.manifests.has(digest)) return ociError(res, 404, 'BLOB_UNKNOWN', `blob ${digest} is not in this repository`, head);
    const entryName = BLOBS_PREFIX + digest.slice(7);
    const e = reader.entry(entryName);
    return sendChecked(req, res, head, entryName, e.size, { 'content-type': 'application/octet-stream', 'docker-content-digest': digest, etag: `"${digest}"` });
  };

  /** Verify once, then send the whole entry or the requested range. */
  const sendChecked = async (req: IncomingMessage, res: ServerResponse, head: boolean, entryName: string, size: number, headers: Record<string, string>) => {
    try {
      await guard.ensure(entryName);
    } catch (err) {
      log(`refusing ${entryName}: ${(err as Error).message}`);
      return ociError(res, 500, 'BLOB_UNKNOWN', `${entryName} does not match its signed digest; the bundle is damaged`, head);
    }
    const range = parseRange(req.headers.range, size);
    if (range.kind === 'unsatisfiable') {
      res.writeHead(416, { 'content-range': `bytes */${size}` });
      return res.end();
    }
    const [start, end] = range.kind === 'partial' ? [range.start, range.end] : [0, size - 1];
    res.writeHead(range.kind === 'partial' ? 206 : 200, {
      ...headers,
      'accept-ranges': 'bytes',
      'content-length': String(Math.max(0, end - start + 1)),
      ...(range.kind === 'partial' && { 'content-range': `bytes ${start}-${end}/${size}` }),
    });
    if (head || size === 0) return res.end();
    await sendEntry(reader, entryName, res, start, end, range.kind === 'full');
  };

  const fileServer = async (req: IncomingMessage, res: ServerResponse) => {
    const head = req.method === 'HEAD';
    if (req.method !== 'GET' && !head) {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-length': '0' });
      return res.end();
    }
    const p = safeDecode(new URL(req.url ?? '/', 'http://x').pathname)?.replace(/^\/+/, '');
    if (p === undefined) {
      res.writeHead(400, { 'content-length': '0' });
      return res.end();
    }
    if (p === 'falco/index.yaml') {
      const entries = falcoIndexEntries(reader.index, { host: registryHostFor(req), prefix: '' }, 'flat');
      const body = falcoIndexYaml(entries);
      res.writeHead(200, { 'content-type': 'application/yaml', 'content-length': String(body.length) });
      return res.end(head ? undefined : body);
    }
    const f = files.get(p);
    if (!f) {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '10' });
      return res.end(head ? undefined : 'not found\n');
    }
    return sendChecked(req, res, head, FILES_PREFIX + f.path, f.size, { 'content-type': 'application/octet-stream', etag: `"sha256:${f.sha256}"` });
  };

  /** The registry as the client can reach it: listening on all addresses, the host the client used, with the registry's port. */
  const registryHostFor = (req: IncomingMessage): string => {
    const m = /^(.*):(\d+)$/.exec(registryAddr);
    const [host = '', port = ''] = m ? [m[1], m[2]] : [registryAddr, ''];
    if (host !== '0.0.0.0' && host !== '[::]') return registryAddr;
    const asked = new URL(`http://${req.headers.host ?? 'localhost'}`).hostname;
    return `${asked.includes(":") && !asked.startsWith("[") ? `[${asked}]` : asked}:${port}`;
  };

  const wrap = (handler: (req: IncomingMessage, res: ServerResponse) => Promise<unknown> | unknown) => (req: IncomingMessage, res: ServerResponse) => {
    access(req, res, Date.now());
    Promise.resolve(handler(req, res)).catch((err: Error) => {
      log(`error serving ${req.url}: ${err.message}`);
      if (!res.headersSent) ociError(res, 500, 'UNKNOWN', err.message, req.method === 'HEAD');
      else res.destroy(err);
    });
  };

  const make = (handler: ReturnType<typeof wrap>) =>
    opts.tls ? https.createServer({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) }, handler) : http.createServer(handler);
  const regServer = make(wrap(registry));
  const fileSrv = make(wrap(fileServer));
  for (const s of [regServer, fileSrv]) s.keepAliveTimeout = 30_000;
  await listen(regServer, opts.listen);
  await listen(fileSrv, opts.filesListen);
  const scheme = opts.tls ? 'https' : 'http';
  const addr = (s: http.Server) => {
    const a = s.address() as AddressInfo;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  };
  registryAddr = addr(regServer);
  return {
    registryUrl: `${scheme}://${registryAddr}`,
    filesUrl: `${scheme}://${addr(fileSrv)}`,
    async close() {
      await Promise.all([regServer, fileSrv].map((s) => new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeIdleConnections();
        setTimeout(() => s.closeAllConnections(), 10_000).unref();
      })));
    },
  };
}

function listen(server: http.Server, at: { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(at.port, at.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

function safeDecode(p: string): string | undefined {
  try {
    return decodeURIComponent(p);
  } catch {
    return undefined;
  }
}

function sendJson(res: ServerResponse, head: boolean, value: unknown, linkHeader?: string): void {
  const body = Buffer.from(JSON.stringify(value));
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length), ...(linkHeader && { link: linkHeader }) });
  res.end(head ? undefined : body);
}

/** `?n=&last=` pagination of a sorted list. */
function page(all: string[], url: URL): string[] {
  const last = url.searchParams.get('last');
  const n = Number(url.searchParams.get('n') ?? 0);
  const from = last ? all.filter((x) => x > last) : all;
  return n > 0 ? from.slice(0, n) : from;
}

function link(url: URL, all: string[]): string | undefined {
  const n = Number(url.searchParams.get('n') ?? 0);
  const shown = page(all, url);
  if (!(n > 0) || shown.length < n || shown.at(-1) === all.at(-1)) return undefined;
  const next = new URL(url.toString());
  next.searchParams.set('last', shown.at(-1) ?? '');
  return `<${next.pathname}${next.search}>; rel="next"`;
}
