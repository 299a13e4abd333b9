// Registry authentication as an interceptor, and the one module that sets
// Authorization. A request goes out with what is known for its origin (a
// cached bearer token for its scope, or basic credentials); a 401 is answered
// once: its WWW-Authenticate challenge says basic or bearer, a token is
// fetched from the realm, and the request is sent again. Credentials are
// scoped to their host (SPEC §1): they go to a token realm only over HTTPS
// (or plain HTTP on the registry's own host and port when it is plain HTTP
// itself) and only on the registry's host or registrable domain; otherwise the
// token is asked for anonymously, with a warning naming both hosts.
import { request } from './undici.js';
import { isIP } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Credential, CredentialLookup } from './credentials.js';
import { AuthError, BodyLimitError, withOrigin } from './errors.js';
import { Forward, headerValue, setHeaders, type Controller, type DispatchOptions, type Headers } from './handler.js';
import { MAX_SMALL_BODY } from './limits.js';
import { isReplayable } from './redirect.js';

export interface AuthOptions {
  readonly credentials: CredentialLookup;
  /** Sends token requests: the same stack without this interceptor. */
  readonly tokens: () => Dispatcher;
  readonly warn?: (message: string) => void;
}

export interface Challenge {
  readonly scheme: string;
  readonly params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="…"` (RFC 7235 auth-params, quoted or token values). */
export function parseChallenge(value: string): Challenge | undefined {
  const m = /^\s*([A-Za-z][A-Za-z0-9._-]*)\s*(.*)$/s.exec(value);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/gy;
  const rest = m[2] ?? '';
  let p: RegExpExecArray | null;
  while ((p = re.exec(rest))) {
    params[(p[1] ?? '').toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
    if (re.lastIndex >= rest.length) break;
  }
  return { scheme: (m[1] ?? '').toLowerCase(), params };
}

/**
 * Why credentials for `registry` must not go to `realm`, or undefined when they may.
 * tldts (the public suffix list) is loaded only here, when a realm is on another host.
 */
export async function realmRefusal(registry: URL, realm: URL): Promise<string | undefined> {
  if (realm.protocol === 'http:') {
    if (!(registry.protocol === 'http:' && realm.host === registry.host)) return `the token realm ${realm.origin} is plain HTTP`;
  } else if (realm.protocol !== 'https:') {
    return `the token realm ${realm.origin} is not HTTP(S)`;
  }
  const a = registry.hostname.toLowerCase();
  const b = realm.hostname.toLowerCase();
  if (a === b) return undefined;
  const bare = (h: string) => h.replace(/^\[|\]$/g, '');
  const shares = (h: string) => isIP(bare(h)) === 0 && h.includes('.');
  if (shares(a) && shares(b)) {
    const { getDomain } = await import('tldts');
    const da = getDomain(a, { allowPrivateDomains: true });
    if (da && da === getDomain(b, { allowPrivateDomains: true })) return undefined;
  }
  return `the token realm ${realm.host} is another host than ${registry.host}`;
}

/** Token scopes from a distribution API path: pull for reads, pull,push for writes, the mount source too. */
export function scopesFor(method: string, path: string): string[] {
  const u = new URL(path, 'http://x');
  if (u.pathname === '/v2/_catalog') return ['registry:catalog:*'];
  const m = /^\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)\//.exec(u.pathname);
  if (!m?.[1]) return [];
  const write = !['GET', 'HEAD'].includes(method.toUpperCase());
  const scopes = [`repository:${m[1]}:${write ? 'pull,push' : 'pull'}`];
  const from = u.searchParams.get('from');
  if (from && u.searchParams.has('mount')) scopes.push(`repository:${from}:pull`);
  return scopes;
}

interface HostAuth {
  scheme: 'basic' | 'bearer';
  realm?: string;
  service?: string;
}

interface Token {
  value: string;
  expires: number;
}

const NO_CONTROLLER: Controller = {
  aborted: false,
  paused: false,
  reason: null,
  abort() {},
  pause() {},
  resume() {},
};

export function auth(o: AuthOptions): Dispatcher.DispatcherComposeInterceptor {
  const state = new AuthState(o);
  return (dispatch) => (rawOpts, handler) => {
    const opts = rawOpts as DispatchOptions;
    const origin = new URL(String(opts.origin)).origin;
    const scopes = opts.airlock?.scope ?? scopesFor(opts.method, opts.path);
    const send = (authorization: string | undefined) =>
      dispatch(authorization ? { ...opts, headers: setHeaders(opts.headers, { authorization }) } : opts, new AuthHandler(state, dispatch, opts, handler, origin, scopes, authorization));
    if (opts.airlock?.basic) {
      // Up front and once: a 401 here goes to the caller, who knows what the API wanted.
      state.basic(origin).then(
        (authorization) => dispatch(authorization ? { ...opts, headers: setHeaders(opts.headers, { authorization }) } : opts, handler),
        (err: Error) => handler.onResponseError?.(NO_CONTROLLER, withOrigin(err, origin)),
      );
      return true;
    }
    const known = state.cached(origin, scopes);
    if (known !== null) return send(known);
    state.authorization(origin, scopes).then(send, (err: Error) => handler.onResponseError?.(NO_CONTROLLER, withOrigin(err, origin)));
    return true;
  };
}

class AuthState {
  private readonly hosts = new Map<string, HostAuth>();
  private readonly tokens = new Map<string, Token>();
  private readonly inflight = new Map<string, Promise<Token>>();
  private readonly basics = new Map<string, Promise<Credential | undefined>>();
  private readonly warned = new Set<string>();

  constructor(private readonly o: AuthOptions) {}

  /** The header to send without waiting: a string, undefined for none, or null when it must be fetched first. */
  cached(origin: string, scopes: readonly string[]): string | undefined | null {
    const h = this.hosts.get(origin);
    if (!h) return undefined;
    if (h.scheme === 'basic') return null;
    const t = this.tokens.get(tokenKey(origin, scopes));
    return t && t.expires > Date.now() ? `Bearer ${t.value}` : null;
  }

  async authorization(origin: string, scopes: readonly string[]): Promise<string | undefined> {
    const h = this.hosts.get(origin);
    if (!h) return undefined;
    if (h.scheme === 'basic') return basicHeader(await this.credential(origin));
    return `Bearer ${(await this.token(origin, h, scopes)).value}`;
  }

  /** The host's basic credentials as a header, when it has any. */
  async basic(origin: string): Promise<string | undefined> {
    return basicHeader(await this.credential(origin));
  }

  /** Learns from a 401 how `origin` wants to be spoken to; returns the header to send again with. */
  async answer(origin: string, challenge: string | undefined, scopes: readonly string[], sent: string | undefined): Promise<string> {
    const host = new URL(origin).host;
    const c = challenge ? parseChallenge(challenge) : undefined;
    if (c?.scheme === 'basic') {
      this.hosts.set(origin, { scheme: 'basic' });
      const header = basicHeader(await this.credential(origin));
      if (!header) throw new AuthError(`${host} asks for a user name and password: give them for this host (--username with --password-stdin${sent ? '' : ', and --auth-host on build'}) or in docker config.json`);
      if (header === sent) throw new AuthError(`${host} refused the credentials (HTTP 401); check --username/--password-stdin or docker config.json`);
      return header;
    }
    if (c?.scheme === 'bearer' && c.params.realm) {
      const h: HostAuth = { scheme: 'bearer', realm: c.params.realm, ...(c.params.service !== undefined && { service: c.params.service }) };
      this.hosts.set(origin, h);
      // Only the token this request was refused with is stale; one that a parallel request fetched meanwhile is reused.
      const key = tokenKey(origin, scopes);
      const cached = this.tokens.get(key);
      if (cached && sent === `Bearer ${cached.value}`) this.tokens.delete(key);
      return `Bearer ${(await this.token(origin, h, scopes)).value}`;
    }
    throw new AuthError(`${host} answered 401 without a usable WWW-Authenticate challenge (${(challenge ?? 'none').slice(0, 200)})`);
  }

  private credential(origin: string): Promise<Credential | undefined> {
    const host = new URL(origin).host;
    let p = this.basics.get(host);
    if (!p) this.basics.set(host, (p = this.o.credentials(host)));
    return p;
  }

  private token(origin: string, h: HostAuth, scopes: readonly string[]): Promise<Token> {
    const key = tokenKey(origin, scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now()) return Promise.resolve(cached);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(origin, h, scopes).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetchToken(origin: string, h: HostAuth, scopes: readonly string[]): Promise<Token> {
    const registry = new URL(origin);
    let realm: URL;
    try {
      realm = new URL(h.realm ?? '');
    } catch {
      throw new AuthError(`${registry.host} names an invalid token realm (${(h.realm ?? '').slice(0, 200)})`);
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new AuthError(`${registry.host} names a token realm that is not HTTP(S): ${realm.protocol}`);
    if (h.service !== undefined) realm.searchParams.set('service', h.service);
    for (const s of scopes) realm.searchParams.append('scope', s);
    let cred = await this.credential(origin);
    const refusal = cred ? await realmRefusal(registry, realm) : undefined;
    if (refusal) {
      const key = `${registry.host} ${realm.host}`;
      if (!this.warned.has(key)) {
        this.warned.add(key);
        this.o.warn?.(`warning: not sending the credentials for ${registry.host} to ${realm.host}: ${refusal}; asking for an anonymous token`);
      }
      cred = undefined;
    }
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = basicHeader(cred);
    if (basic) headers.authorization = basic;
    const res = await request(this.o.tokens(), {
      origin: realm.origin,
      path: realm.pathname + realm.search,
      method: 'GET',
      headers,
      airlock: { item: `token for ${registry.host}`, maxBody: MAX_SMALL_BODY },
    } as Dispatcher.RequestOptions);
    const text = await res.body.text();
    if (res.statusCode === 401 || res.statusCode === 403) {
      throw new AuthError(
        `the token server ${realm.origin} refused ${basic ? 'the credentials' : 'anonymous access'} for ${registry.host} (HTTP ${res.statusCode}); ` +
          (basic ? 'check --username/--password-stdin or docker config.json' : 'give credentials for this host (--username with --password-stdin and --auth-host, or docker login)'),
      );
    }
    if (res.statusCode !== 200) throw new AuthError(`the token server ${realm.origin} answered HTTP ${res.statusCode} for ${registry.host}`);
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new AuthError(`the token server ${realm.origin} answered something that is not JSON`);
    }
    const value = typeof body.token === 'string' && body.token ? body.token : typeof body.access_token === 'string' ? body.access_token : '';
    if (!value || /[\r\n]/.test(value)) throw new AuthError(`the token server ${realm.origin} answered without a usable token`);
    const lifetime = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    const token = { value, expires: Date.now() + Math.max(5, lifetime - 5) * 1000 };
    this.tokens.set(tokenKey(origin, scopes), token);
    return token;
  }
}

class AuthHandler extends Forward {
  private swallowing = false;
  private challenge: string | undefined;
  private dropped = 0;
  private answered = false;
  /** The URL the current attempt went to, after redirects. */
  private answering: string | undefined;

  constructor(
    private readonly state: AuthState,
    private readonly dispatch: Dispatcher.Dispatch,
    private readonly opts: DispatchOptions,
    handler: Dispatcher.DispatchHandler,
    private readonly origin: string,
    private readonly scopes: readonly string[],
    private sent: string | undefined,
  ) {
    super(handler);
  }

  override onRequestStart(controller: Controller, context: unknown): void {
    this.answering = (context as { url?: string } | undefined)?.url;
    super.onRequestStart(controller, context);
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    // A 401 from where a redirect led (a CDN, an object store) is not this origin's challenge: the caller's to see.
    const ours = this.answering === undefined || new URL(this.answering).origin === this.origin;
    if (statusCode === 401 && ours && !this.answered && isReplayable(this.opts.body)) {
      this.swallowing = true;
      this.challenge = headerValue(headers, 'www-authenticate');
      return;
    }
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    if (!this.swallowing) return super.onResponseData(controller, chunk);
    this.dropped += chunk.length;
    if (this.dropped > MAX_SMALL_BODY) {
      this.swallowing = false;
      controller.abort(withOrigin(new BodyLimitError(`a 401 body longer than ${MAX_SMALL_BODY} bytes`), this.origin));
    }
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    if (!this.swallowing) return super.onResponseEnd(controller, trailers);
    this.swallowing = false;
    this.answered = true;
    this.state.answer(this.origin, this.challenge, this.scopes, this.sent).then(
      (authorization) => {
        this.sent = authorization;
        this.dispatch({ ...this.opts, headers: setHeaders(this.opts.headers, { authorization }) }, this);
      },
      (err: Error) => super.onResponseError(controller, withOrigin(err, this.origin)),
    );
  }
}

function basicHeader(c: Credential | undefined): string | undefined {
  return c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : undefined;
}

function tokenKey(origin: string, scopes: readonly string[]): string {
  return `${origin} ${[...scopes].sort().join(' ')}`;
}
