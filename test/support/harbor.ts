/**
 * A stand-in for Harbor's API in front of the real docker-registry. Harbor
 * itself cannot be installed here; this implements exactly the Harbor
 * endpoints airlock calls (GET /api/v2.0/ping, HEAD /api/v2.0/projects?
 * project_name=, POST /api/v2.0/projects with basic auth), as Harbor 2.x
 * answers them, and forwards every /v2/ request to the real registry
 * (streamed both ways, Location rewritten), where Harbor would serve its own.
 * Like Harbor, it refuses pushes into a repository outside an existing
 * project.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface HarborStandIn {
  host: string;
  url: string;
  projects: Set<string>;
  /** API calls received: method, path and whether they carried basic credentials. */
  api: Array<{ method: string; path: string; user?: string }>;
  /** Registry requests forwarded. */
  forwarded: number;
  stop(): Promise<void>;
}

export async function startHarborStandIn(registryUrl: string, opts: { user: string; password: string; projects?: string[] }): Promise<HarborStandIn> {
  const upstream = new URL(registryUrl);
  const projects = new Set(opts.projects ?? []);
  const api: HarborStandIn['api'] = [];
  const sockets = new Set<Socket>();
  let self = '';
  const state = { forwarded: 0 };

  const userOf = (req: IncomingMessage): string | undefined => {
    const m = /^Basic (.+)$/.exec(req.headers.authorization ?? '');
    if (!m?.[1]) return undefined;
    const [u, ...p] = Buffer.from(m[1], 'base64').toString('utf8').split(':');
    return u === opts.user && p.join(':') === opts.password ? u : undefined;
  };
  const json = (res: ServerResponse, status: number, body?: unknown) => {
    const bytes = body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(bytes.length) });
    res.end(bytes);
  };

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    if (u.pathname.startsWith('/api/')) {
      const user = userOf(req);
      api.push({ method: req.method ?? 'GET', path: u.pathname + u.search, ...(user && { user }) });
      if (u.pathname === '/api/v2.0/ping' && req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        return void res.end('Pong');
      }
      if (u.pathname === '/api/v2.0/projects' && req.method === 'HEAD') {
        return void res.writeHead(projects.has(u.searchParams.get('project_name') ?? '') ? 200 : 404).end();
      }
      if (u.pathname === '/api/v2.0/projects' && req.method === 'POST') {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (!user) return json(res, 401, { errors: [{ code: 'UNAUTHORIZED', message: 'unauthorized' }] });
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { project_name?: string };
          const name = body.project_name ?? '';
          if (!/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/.test(name)) return json(res, 400, { errors: [{ code: 'BAD_REQUEST', message: 'invalid project name' }] });
          if (projects.has(name)) return json(res, 409, { errors: [{ code: 'CONFLICT', message: 'project exists' }] });
          projects.add(name);
          res.writeHead(201, { location: `/api/v2.0/projects/${projects.size}` });
          res.end();
        });
        return;
      }
      return json(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'not in the stand-in' }] });
    }
    // Harbor refuses a push outside an existing project.
    const repo = /^\/v2\/(.+?)\/(?:blobs|manifests)\//.exec(u.pathname)?.[1];
    if (repo && req.method !== 'GET' && req.method !== 'HEAD' && !projects.has(repo.split('/').length > 1 ? (repo.split('/')[0] ?? '') : '')) {
      return json(res, 404, { errors: [{ code: 'NAME_UNKNOWN', message: `project ${repo.split('/')[0]} not found` }] });
    }
    state.forwarded++;
    const fwd = http.request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
      (up) => {
        const headers = { ...up.headers };
        if (typeof headers.location === 'string') headers.location = headers.location.replace(upstream.origin, self);
        res.writeHead(up.statusCode ?? 502, headers);
        up.pipe(res);
      },
    );
    fwd.on('error', () => res.destroy());
    req.pipe(fwd);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen({ host: '127.0.0.1', port: 0 }, r));
  const { port } = server.address() as AddressInfo;
  self = `http://127.0.0.1:${port}`;
  return {
    host: `127.0.0.1:${port}`,
    url: self,
    projects,
    api,
    get forwarded() {
      return state.forwarded;
    },
    stop: async () => {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}
