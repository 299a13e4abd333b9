/**
 * A registry WITH the OCI 1.1 referrers API, for the tests of that behaviour
 * only: distribution 2.8 (the real registry the other tests use) lacks the
 * API, and no registry that has it is installed. So this is a thin front in
 * front of a real distribution 2.8: every request is forwarded as is, except
 * - `GET /v2/<name>/referrers/<digest>`, answered here from the manifests
 *   this front saw pushed with a `subject` (200, an OCI index, empty when
 *   none; `Link` pagination with `pageSize`);
 * - a manifest PUT with a `subject` that the registry accepted gets the
 *   `OCI-Subject` header a registry with the API sends.
 * `referrersContentType` lets a test make the answer look like a registry
 * whose catch-all route answers 200 with another type.
 *
 * Request bodies are buffered (test content is small). Every request is
 * recorded with the status sent.
 */
import { createHash } from 'node:crypto';
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host']);

export interface FrontRequest {
  method: string;
  /** Path with query string. */
  path: string;
  status: number;
}

export interface ReferrersFront {
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** "127.0.0.1:PORT" */
  host: string;
  requests: FrontRequest[];
  /** Content-Type of referrers answers; default the OCI index type. */
  referrersContentType: string;
  /** Entries per referrers page (Link to the next); default all on one page. */
  pageSize: number | undefined;
  /** Origin put before the path of the next-page Link (default none: a relative link). */
  nextOrigin: string | undefined;
  /** When set, every referrers answer has this body instead (a hostile or broken registry). */
  referrersBody: Buffer | undefined;
  stop(): Promise<void>;
}

interface Entry {
  mediaType: string;
  digest: string;
  size: number;
  artifactType?: string;
  annotations?: Record<string, string>;
}

function sha256(buf: Buffer): string {
  return `sha256:${createHash('sha256').update(buf).digest('hex')}`;
}

/** The referrers entry for a manifest with a subject (distribution-spec: artifactType, else config.mediaType; its annotations). */
function entryOf(bytes: Buffer, contentType: string): { subject: string; entry: Entry } | undefined {
  let doc: { mediaType?: string; artifactType?: string; config?: { mediaType?: string }; subject?: { digest?: string }; annotations?: Record<string, string> };
  try {
    doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
  } catch {
    return undefined;
  }
  const subject = doc?.subject?.digest;
  if (typeof subject !== 'string') return undefined;
  const artifactType = doc.artifactType ?? doc.config?.mediaType;
  return {
    subject,
    entry: {
      mediaType: doc.mediaType ?? contentType,
      digest: sha256(bytes),
      size: bytes.length,
      ...(artifactType !== undefined && { artifactType }),
      ...(doc.annotations !== undefined && { annotations: doc.annotations }),
    },
  };
}

export async function startReferrersFront(upstreamUrl: string): Promise<ReferrersFront> {
  const upstream = new URL(upstreamUrl);
  const agent = new http.Agent({ keepAlive: true });
  /** "<repo>@<subject>" → entries, in push order. */
  const referrers = new Map<string, Entry[]>();
  let origin = '';

  const front: ReferrersFront = {
    url: '',
    host: '',
    requests: [],
    referrersContentType: OCI_INDEX,
    pageSize: undefined,
    nextOrigin: undefined,
    referrersBody: undefined,
    stop: async () => undefined,
  };

  const answerReferrers = (res: ServerResponse, repo: string, subject: string, query: URLSearchParams, method: string): number => {
    const all = referrers.get(`${repo}@${subject}`) ?? [];
    const page = Number(query.get('page') ?? '0');
    const size = front.pageSize ?? Math.max(all.length, 1);
    const slice = all.slice(page * size, page * size + size);
    const body = front.referrersBody ?? Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: slice }));
    const headers: OutgoingHttpHeaders = { 'content-type': front.referrersContentType, 'content-length': body.length };
    if ((page + 1) * size < all.length) headers['link'] = `<${front.nextOrigin ?? ''}/v2/${repo}/referrers/${subject}?page=${page + 1}>; rel="next"`;
    res.writeHead(200, headers);
    res.end(method === 'HEAD' ? undefined : body);
    return 200;
  };

  const forward = async (req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<number> => {
    const headers: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
    headers['host'] = upstream.host;
    headers['content-length'] = body.length;
    const upRes = await new Promise<IncomingMessage>((resolve, reject) => {
      const up = http.request({ hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, resolve);
      up.once('error', reject);
      up.end(body);
    });
    const chunks: Buffer[] = [];
    for await (const c of upRes) chunks.push(c as Buffer);
    const out: OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(upRes.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) out[k] = v;
    const location = upRes.headers['location'];
    if (typeof location === 'string') {
      const loc = new URL(location, upstream);
      if (loc.host === upstream.host) out['location'] = `${origin}${loc.pathname}${loc.search}`;
    }
    const status = upRes.statusCode ?? 502;
    const m = /^\/v2\/(.+)\/manifests\/[^/]+$/.exec((req.url ?? '').split('?')[0] ?? '');
    if (req.method === 'PUT' && m?.[1] && status === 201) {
      const found = entryOf(body, String(req.headers['content-type'] ?? ''));
      if (found) {
        const key = `${m[1]}@${found.subject}`;
        const list = referrers.get(key) ?? [];
        if (!list.some((e) => e.digest === found.entry.digest)) list.push(found.entry);
        referrers.set(key, list);
        out['oci-subject'] = found.subject;
      }
    }
    res.writeHead(status, out);
    res.end(Buffer.concat(chunks));
    return status;
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const method = req.method ?? 'GET';
      const url = new URL(req.url ?? '/', 'http://front.invalid');
      const ref = /^\/v2\/(.+)\/referrers\/(sha256:[a-f0-9]{64})$/.exec(url.pathname);
      const done = (status: number) => front.requests.push({ method, path: req.url ?? '/', status });
      if (ref?.[1] && ref[2] && (method === 'GET' || method === 'HEAD')) {
        done(answerReferrers(res, ref[1], ref[2], url.searchParams, method));
        return;
      }
      forward(req, res, Buffer.concat(chunks)).then(done, (err: unknown) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(String(err));
        done(502);
      });
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  front.host = `127.0.0.1:${port}`;
  front.url = origin = `http://${front.host}`;
  front.stop = async () => {
    const closed = new Promise<void>((r) => server.close(() => r()));
    for (const s of sockets) s.destroy();
    agent.destroy();
    await closed;
  };
  return front;
}
