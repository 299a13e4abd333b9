/**
 * A small token server for distribution's `auth: token` mode, so the tests can
 * run a real docker-registry that demands bearer tokens.
 *
 * What distribution 2.8 (registry/auth/token) checks before it trusts a JWT:
 *  - three base64url parts; header `alg` names the signature algorithm and one
 *    of `x5c` (tried first), `jwk` or `kid` identifies the key;
 *  - `x5c[0]` is a base64 (standard, not url) DER leaf certificate that must
 *    chain (x5c[1..] as intermediates, any extended key usage) to a
 *    certificate in `rootcertbundle`; the leaf's public key verifies the
 *    signature (ES256 = raw 64-byte r||s, libtrust);
 *  - `iss` equals the configured issuer, `aud` equals the configured service,
 *    `exp`/`nbf` are valid with 60 s of leeway;
 *  - `access` [{type, name, actions}] must contain every action the request
 *    needs, otherwise 401 with `error="insufficient_scope"`.
 */
import { createPrivateKey, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { makeTempDir, removeTempDir } from './proc.js';
import { makeCA, makeServerCert } from './tls.js';

export interface TokenServerOptions {
  /** user → password accepted with Basic auth at the token endpoint. */
  users: Record<string, string>;
  /** Anonymous clients get `pull` on repository scopes (never push); otherwise nothing. */
  anonymousPull?: boolean;
  /** `service` (the JWT audience); default "airlock-test-registry". */
  service?: string;
  /** `iss` claim; default "airlock-test-token-server". */
  issuer?: string;
  /** Token lifetime in seconds; default 300. */
  expiresIn?: number;
  /** Serve /token over HTTPS (a certificate for 127.0.0.1 from the token CA); the realm is then https://. */
  tls?: boolean;
}

export interface TokenRequest {
  /** The scope parameters as sent (several `scope=` and space-separated ones are split). */
  scope: string[];
  /** Authenticated user (absent for anonymous or failed requests). */
  user?: string;
  /** Raw Authorization header, when sent. */
  authorization?: string;
  service?: string;
  /** HTTP status the token server answered. */
  status: number;
  /** The access claim of the token issued (absent when none was issued). */
  access?: ResourceAccess[];
}

export interface ResourceAccess {
  type: string;
  name: string;
  actions: string[];
}

export interface TestTokenServer {
  /** "http://127.0.0.1:PORT/token" (https:// with `tls`) */
  realm: string;
  /** `127.0.0.1:PORT` */
  host: string;
  /** With `tls`: the CA that signed the server certificate (PEM file). */
  caFile?: string;
  service: string;
  issuer: string;
  /** PEM file with the CA that signed the token-signing certificate: the registry's rootcertbundle. */
  rootCertBundle: string;
  /** Every request to /token, in order. */
  requests: TokenRequest[];
  /** Signs a token with arbitrary claims (for negative tests); header as for real tokens. */
  sign(claims: Record<string, unknown>): string;
  stop(): Promise<void>;
}

function b64url(buf: Buffer | string): string {
  return Buffer.from(buf).toString('base64url');
}

/** Splits "type:name:actions" (name may itself contain ':'). */
function parseScope(scope: string): ResourceAccess | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  const actions = scope
    .slice(last + 1)
    .split(',')
    .map((a) => a.trim())
    .filter((a) => a !== '');
  return { type: scope.slice(0, first), name: scope.slice(first + 1, last), actions };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const bytes = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(bytes.length), ...headers });
  res.end(bytes);
}

export async function startTokenServer(opts: TokenServerOptions): Promise<TestTokenServer> {
  const service = opts.service ?? 'airlock-test-registry';
  const issuer = opts.issuer ?? 'airlock-test-token-server';
  const expiresIn = opts.expiresIn ?? 300;
  const dir = await makeTempDir('airlock-token-');
  try {
    const ca = await makeCA(dir, 'airlock token CA');
    const signer = await makeServerCert(dir, ca, { dns: ['token-signer.invalid'], cn: 'airlock token signer' }, 'signer');
    const key: KeyObject = createPrivateKey(await readFile(signer.key));
    const certDer = new X509Certificate(await readFile(signer.cert)).raw.toString('base64');
    const header = b64url(JSON.stringify({ typ: 'JWT', alg: 'ES256', x5c: [certDer] }));

    const signJwt = (claims: Record<string, unknown>): string => {
      const input = `${header}.${b64url(JSON.stringify(claims))}`;
      const sig = sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
      return `${input}.${b64url(sig)}`;
    };

    const requests: TokenRequest[] = [];

    const handle = (req: IncomingMessage, res: ServerResponse): void => {
      const url = new URL(req.url ?? '/', 'http://token.invalid');
      if (url.pathname !== '/token') {
        sendJson(res, 404, { errors: [{ code: 'NOT_FOUND', message: 'only /token is served' }] });
        return;
      }
      if (req.method !== 'GET') {
        sendJson(res, 405, { errors: [{ code: 'UNSUPPORTED', message: 'only GET /token is supported' }] }, { allow: 'GET' });
        return;
      }
      const scope = url.searchParams.getAll('scope').flatMap((s) => s.split(' ').filter((x) => x !== ''));
      const authorization = req.headers['authorization'];
      const reqService = url.searchParams.get('service') ?? undefined;
      const entry: TokenRequest = {
        scope,
        ...(authorization === undefined ? {} : { authorization }),
        ...(reqService === undefined ? {} : { service: reqService }),
        status: 0,
      };
      requests.push(entry);

      if (reqService !== undefined && reqService !== service) {
        entry.status = 400;
        sendJson(res, 400, { errors: [{ code: 'DENIED', message: `unknown service ${reqService}` }] });
        return;
      }

      let user: string | undefined;
      if (authorization !== undefined) {
        const m = /^basic\s+(\S+)$/i.exec(authorization);
        const decoded = m?.[1] === undefined ? undefined : Buffer.from(m[1], 'base64').toString('utf8');
        const colon = decoded?.indexOf(':') ?? -1;
        const name = decoded !== undefined && colon >= 0 ? decoded.slice(0, colon) : undefined;
        const pass = decoded !== undefined && colon >= 0 ? decoded.slice(colon + 1) : undefined;
        if (name === undefined || !Object.hasOwn(opts.users, name) || opts.users[name] !== pass) {
          entry.status = 401;
          sendJson(
            res,
            401,
            { errors: [{ code: 'UNAUTHORIZED', message: 'invalid username or password' }] },
            { 'www-authenticate': 'Basic realm="airlock-test-token"' },
          );
          return;
        }
        user = name;
        entry.user = name;
      }

      const access: ResourceAccess[] = [];
      for (const s of scope) {
        const want = parseScope(s);
        if (want === undefined) continue;
        let granted: string[];
        if (user !== undefined) granted = want.actions;
        else if (opts.anonymousPull === true && want.type === 'repository') granted = want.actions.filter((a) => a === 'pull');
        else granted = [];
        if (granted.length > 0) access.push({ type: want.type, name: want.name, actions: granted });
      }

      const now = Math.floor(Date.now() / 1000);
      const token = signJwt({
        iss: issuer,
        sub: user ?? '',
        aud: service,
        exp: now + expiresIn,
        nbf: now - 1,
        iat: now,
        jti: randomBytes(12).toString('hex'),
        access,
      });
      entry.status = 200;
      entry.access = access;
      sendJson(res, 200, {
        token,
        access_token: token,
        expires_in: expiresIn,
        issued_at: new Date(now * 1000).toISOString(),
      });
    };

    const onRequest = (req: IncomingMessage, res: ServerResponse) => {
      try {
        handle(req, res);
      } catch (e) {
        if (!res.headersSent) sendJson(res, 500, { errors: [{ code: 'UNKNOWN', message: (e as Error).message }] });
        else res.destroy();
      }
    };
    let server;
    if (opts.tls) {
      const cert = await makeServerCert(dir, ca, { ip: '127.0.0.1', dns: ['localhost'] }, 'server');
      server = createHttpsServer({ key: await readFile(cert.key), cert: await readFile(cert.cert) }, onRequest);
    } else {
      server = createServer(onRequest);
    }
    const sockets = new Set<Socket>();
    server.on('connection', (s) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: '127.0.0.1', port: 0 }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;

    let stopping: Promise<void> | undefined;
    return {
      realm: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}/token`,
      host: `127.0.0.1:${port}`,
      ...(opts.tls && { caFile: ca.caCert }),
      service,
      issuer,
      rootCertBundle: ca.caCert,
      requests,
      sign: signJwt,
      stop: () => {
        stopping ??= (async () => {
          const closed = new Promise<void>((r) => server.close(() => r()));
          for (const s of sockets) s.destroy();
          await closed;
          await removeTempDir(dir);
        })();
        return stopping;
      },
    };
  } catch (e) {
    await removeTempDir(dir);
    throw e;
  }
}
