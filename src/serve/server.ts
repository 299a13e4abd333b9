// `airlock serve`: a bundle as a read-only OCI registry (pull API, referrers API) and a file
// server, straight from the tarball with positioned reads. The signature is
// checked at start and the headers indexed; every entry is hashed whole before
// its first byte goes out, and again whenever the bundle file changed since
// (guard.ts). Responses stream in small reads with backpressure and hold back
// their last chunk until the bytes are known good: a whole entry until it hashed
// to the signed digest on the way out, a range until the file is seen unchanged
// since the entry was verified. Otherwise the connection is cut before that
// chunk, so a client never gets a complete response with wrong bytes. A delta
// served with its bases (serve --base) reads what it leaves out from the base
// that holds it (sources.ts), under that base's own guard: the same rules.
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { READ_BOUNDS, readRegularSync } from '../fsx/safe.js';
import { BLOBS_PREFIX, FILES_PREFIX } from '../bundle/format.js';
import { BundleError, type BundleReader } from '../bundle/reader.js';
import { falcoIndexEntries, falcoIndexYaml } from '../emit/falco-index.js';
import { FALCO_INDEX_PATH } from '../manifest/paths.js';
import { Catalog, type Repo } from './catalog.js';
import { DEFAULT_LIMITS, KEEP_ALIVE_MS, READ_CHUNK, type ServeLimits } from './limits.js';
import { printable } from '../util/printable.js';
import { parseRange } from './range.js';
import { referrersAnswer } from './referrers.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import { EntrySources, type EntrySource } from './sources.js';

export interface ServeOptions {
  readonly reader: BundleReader;
  /** A delta's bases (openBases): what it leaves out is served from them. */
  readonly bases?: readonly BundleReader[];
  readonly listen: { host: string; port: number };
  readonly filesListen: { host: string; port: number };
  readonly tls?: { cert: string; key: string };
  readonly log: (line: string) => void;
  readonly limits?: ServeLimits;
  /** HOST[:PORT] clients reach the registry at, written into falco/index.yaml (see indexRegistry). */
  readonly registryHost?: string;
}

export interface Serving {
  readonly registryUrl: string;
  readonly filesUrl: string;
  /** The registry as falco/index.yaml names it; `guessed` when it is this machine's host name (listening on all addresses, no registryHost). */
  readonly indexRegistry: { readonly host: string; readonly guessed: boolean };
  close(): Promise<void>;
}

const NAME_RE = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*)*$/;

function ociError(res: ServerResponse, status: number, code: string, message: string, head: boolean): void {
  const body = Buffer.from(JSON.stringify({ errors: [{ code, message, detail: null }] }));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(body.length), 'docker-distribution-api-version': 'registry/2.0' });
  res.end(head ? undefined : body);
}

/** Yields `src` (`total` bytes) as it comes, but the last chunk only once `check` passed. */
async function* holdLast(src: AsyncIterable<Buffer>, total: number, seen: (chunk: Buffer) => void, check: () => Promise<void>): AsyncGenerator<Buffer> {
  let n = 0;
  for await (const chunk of src) {
    seen(chunk);
    n += chunk.length;
    if (n >= total) await check();
    yield chunk;
  }
}

/** Bytes that turned out not to be the signed ones while they were going out. */
class MismatchError extends BundleError {}

export async function serve(opts: ServeOptions): Promise<Serving> {
  const { reader, log } = opts;
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const sources = await EntrySources.open(reader, opts.bases);
  for (const b of sources.unused) log(printable(`--base ${b.path} holds none of what ${reader.path} leaves out; not used`));
  const stamps = await sources.stamps();
  const catalog = await Catalog.build(reader, sources);
  for (const repo of catalog.repos.values()) for (const d of repo.manifests.keys()) sources.markVerified(BLOBS_PREFIX + d.slice(7), stamps);
  const files = new Map(reader.index.files.map((f) => [f.path, f]));
  let indexRegistry: Serving['indexRegistry'] = { host: '', guessed: false };
  let falcoIndex: Promise<Buffer> | undefined;

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
    const m = /^\/v2\/(.+)\/(manifests|blobs|tags|referrers)\/(.+)$/.exec(p);
    if (!m) return ociError(res, 404, 'NOT_FOUND', 'not a registry API path', head);
    const [, name = '', kind, ref = ''] = m;
    const repo = NAME_RE.test(name) ? catalog.repos.get(name) : undefined;
    if (!repo) return ociError(res, 404, 'NAME_UNKNOWN', `repository ${name} is not in this bundle`, head);
    if (kind === 'tags') {
      if (ref !== 'list') return ociError(res, 404, 'NOT_FOUND', 'not a registry API path', head);
      const tags = [...repo.tags.keys()].sort();
      return sendJson(res, head, { name, tags: page(tags, url) }, link(url, tags));
    }
    if (kind === 'referrers') {
      const answer = referrersAnswer(repo, ref, url.searchParams);
      if (answer.status === 400) return ociError(res, 400, 'DIGEST_INVALID', answer.problem, head);
      res.writeHead(200, { 'content-type': OCI_INDEX, 'content-length': String(answer.body.length), ...(answer.filtered && { 'oci-filters-applied': 'artifactType' }) });
      return res.end(head ? undefined : answer.body);
    }
    if (kind === 'manifests') return manifest(req, res, head, repo, name, ref, url.searchParams.get('ns'));
    return blob(req, res, head, repo, ref);
  };

  const manifest = async (req: IncomingMessage, res: ServerResponse, head: boolean, repo: Repo, name: string, ref: string, ns: string | null) => {
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
    const src = sources.resolve(BLOBS_PREFIX + digest.slice(7));
    return sendChecked(req, res, head, src, { 'content-type': mediaType, 'docker-content-digest': digest, etag: `"${digest}"` }, false);
  };

  const blob = async (req: IncomingMessage, res: ServerResponse, head: boolean, repo: Repo, digest: string) => {
    if (!repo.blobs.has(digest) && !repo.manifests.has(digest)) return ociError(res, 404, 'BLOB_UNKNOWN', `blob ${digest} is not in this repository`, head);
    const src = sources.resolve(BLOBS_PREFIX + digest.slice(7));
    return sendChecked(req, res, head, src, { 'content-type': 'application/octet-stream', 'docker-content-digest': digest, etag: `"${digest}"` });
  };

  /** Verified since the file last changed, then the whole entry or (when `ranges`) the requested range. */
  const sendChecked = async (req: IncomingMessage, res: ServerResponse, head: boolean, src: EntrySource, headers: Record<string, string>, ranges = true) => {
    let verifiedAt: string;
    const size = src.reader.entry(src.name).size;
    // Hashing a large entry (or waiting for another) is the server's work, not an idle client.
    req.socket.setTimeout(0);
    try {
      verifiedAt = await src.guard.ensure(src.name);
    } catch (err) {
      log(`refusing ${src.name}${src.reader === reader ? '' : ` of base ${src.reader.path}`}: ${(err as Error).message}`);
      return ociError(res, 500, 'BLOB_UNKNOWN', `${src.name} does not match its signed digest; the bundle${src.reader === reader ? '' : "'s base"} is damaged`, head);
    } finally {
      if (!req.socket.destroyed) req.socket.setTimeout(limits.idleTimeoutMs);
    }
    const range = parseRange(ranges ? req.headers.range : undefined, size);
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
    await sendEntry(req, res, src, start, end, range.kind === 'full' ? undefined : verifiedAt);
  };

  /**
   * Streams [start, end] of an entry. The whole entry (no `verifiedAt`) is hashed
   * on the way and its last chunk sent only if the hash matches; a range's last
   * chunk only if the file is unchanged since the stamp the entry was verified at.
   * One READ_CHUNK buffer per response, refilled only once the socket has taken
   * the last chunk: a client that stops reading holds that and nothing more.
   */
  const sendEntry = async (req: IncomingMessage, res: ServerResponse, src: EntrySource, start: number, end: number, verifiedAt?: string) => {
    const { reader: tar, guard, name } = src;
    const e = tar.entry(name);
    const h = verifiedAt === undefined ? createHash('sha256') : undefined;
    const check = async () => {
      if (verifiedAt !== undefined) return guard.unchangedSince(name, verifiedAt);
      const actual = h?.digest('hex');
      if (actual !== e.sha256) throw new MismatchError(`entry "${name}" changed on disk since it was verified: its sha256 is now ${actual}, bundle.json says ${e.sha256}`);
    };
    const buf = Buffer.allocUnsafe(Math.min(READ_CHUNK, end - start + 1));
    const closed = new Promise<void>((resolve) => res.once('close', resolve));
    try {
      for await (const chunk of holdLast(tar.range(name, start, end + 1, buf), end - start + 1, (c) => h?.update(c), check)) {
        if (res.destroyed) return;
        await Promise.race([new Promise<void>((resolve) => res.write(chunk, () => resolve())), closed]);
      }
      if (!res.destroyed) res.end();
    } catch (err) {
      if (!(err instanceof BundleError)) throw err;
      // Destroying the response destroys the socket: the client sees a short body, never a complete one.
      res.destroy();
      guard.forget(name);
      log(`cut off ${req.method} ${req.url} before its last bytes: ${err.message}`);
    }
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
    if (p === FALCO_INDEX_PATH) {
      const body = await (falcoIndex ??= falcoIndexYaml(falcoIndexEntries(reader.index, { host: indexRegistry.host, prefix: '' }, 'flat')));
      res.writeHead(200, { 'content-type': 'application/yaml', 'content-length': String(body.length) });
      return res.end(head ? undefined : body);
    }
    const f = files.get(p);
    if (!f) {
      res.writeHead(404, { 'content-type': 'text/plain', 'content-length': '10' });
      return res.end(head ? undefined : 'not found\n');
    }
    return sendChecked(req, res, head, sources.resolve(FILES_PREFIX + f.path), { 'content-type': 'application/octet-stream', etag: `"sha256:${f.sha256}"` });
  };

  const wrap = (handler: (req: IncomingMessage, res: ServerResponse) => Promise<unknown> | unknown) => (req: IncomingMessage, res: ServerResponse) => {
    access(req, res, Date.now());
    Promise.resolve(handler(req, res)).catch((err: Error) => {
      log(`error serving ${req.url}: ${err.message}`);
      if (!res.headersSent) ociError(res, 500, 'UNKNOWN', err.message, req.method === 'HEAD');
      else res.destroy(err);
    });
  };

  const serverOptions: http.ServerOptions = {
    // The request line and headers (and the whole request: GET and HEAD have no body) within this, or 408 and closed.
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.headersTimeoutMs,
    // How often Node looks for requests over those timeouts (its default, 30 s, would let them live that much longer).
    connectionsCheckingInterval: Math.min(5_000, Math.max(100, Math.floor(limits.headersTimeoutMs / 4))),
    keepAliveTimeout: Math.min(KEEP_ALIVE_MS, limits.idleTimeoutMs),
  };
  const make = (handler: ReturnType<typeof wrap>, label: string) => {
    const s = opts.tls
      ? https.createServer({ ...serverOptions, cert: readRegularSync(opts.tls.cert, { ...READ_BOUNDS.pem, follow: true }), key: readRegularSync(opts.tls.key, { ...READ_BOUNDS.pem, follow: true }), handshakeTimeout: limits.headersTimeoutMs }, handler)
      : http.createServer(serverOptions, handler);
    // No byte read or written for this long (a client that stopped reading, or sends nothing): the socket is destroyed.
    s.timeout = limits.idleTimeoutMs;
    s.maxConnections = limits.maxConnections;
    let dropped = 0;
    let lastReport = 0;
    s.on('drop', () => {
      dropped++;
      if (Date.now() - lastReport < 10_000) return;
      lastReport = Date.now();
      log(`${label}: ${limits.maxConnections} connections open (the limit); refused ${dropped} since the last report`);
      dropped = 0;
    });
    return s;
  };
  const regServer = make(wrap(registry), 'registry');
  const fileSrv = make(wrap(fileServer), 'files');
  const addr = (s: http.Server) => {
    const a = s.address() as AddressInfo;
    return a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`;
  };
  await listen(regServer, opts.listen);
  const registryAddr = addr(regServer);
  // Known before the file server, which serves the index, takes its first request.
  indexRegistry = indexRegistryFor(regServer.address() as AddressInfo, registryAddr, opts.registryHost);
  await listen(fileSrv, opts.filesListen);
  const scheme = opts.tls ? 'https' : 'http';
  return {
    registryUrl: `${scheme}://${registryAddr}`,
    indexRegistry,
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

/**
 * The registry as falco/index.yaml names it, from the configuration only: never a
 * request's Host header, which any client (or a DNS-rebinding page) chooses.
 * Listening on all addresses names none a client can use, so this machine's
 * host name stands in, with the port, unless `explicit` says better.
 */
function indexRegistryFor(a: AddressInfo, listened: string, explicit: string | undefined): Serving['indexRegistry'] {
  if (explicit) return { host: explicit, guessed: false };
  const all = a.address === '0.0.0.0' || a.address === '::';
  const name = hostname();
  return all && name ? { host: `${name}:${a.port}`, guessed: true } : { host: listened, guessed: false };
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
