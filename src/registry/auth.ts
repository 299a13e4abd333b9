// Registry authentication: credentials (flags, then docker config.json),
// WWW-Authenticate challenges, and bearer tokens cached per host and scope.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import type { Transport } from './transport.js';

export interface Credential {
  readonly username: string;
  readonly password: string;
}

export type CredentialLookup = (host: string) => Credential | undefined;

const DOCKER_HUB_ALIASES = ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'];

/** The key a host is filed under in config.json: Docker Hub has many names. */
function configKey(host: string): string {
  return DOCKER_HUB_ALIASES.includes(host) ? 'docker.io' : host;
}

/**
 * Reads `auths` from `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`).
 * Keys may be URLs (`https://index.docker.io/v1/`); `auth` is base64 user:password.
 * Credential helpers are not run: they need the network or a desktop keyring.
 */
export function dockerConfigCredentials(env: NodeJS.ProcessEnv = process.env): Map<string, Credential> {
  const dir = env.DOCKER_CONFIG ?? path.join(homedir(), '.docker');
  const out = new Map<string, Credential>();
  let config: { auths?: Record<string, { auth?: string; username?: string; password?: string }> };
  try {
    config = JSON.parse(readFileSync(path.join(dir, 'config.json'), 'utf8')) as typeof config;
  } catch {
    return out;
  }
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    let host = key.replace(/^[a-z]+:\/\//, '').replace(/\/.*$/, '');
    host = configKey(host);
    let username = entry.username;
    let password = entry.password;
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon > 0) {
        username = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
    }
    if (username && password !== undefined) out.set(host, { username, password });
  }
  return out;
}

/** Flag credentials (for every host) take precedence over config.json (per host). */
export function credentialLookup(flags: Credential | undefined, config: Map<string, Credential>): CredentialLookup {
  return (host) => flags ?? config.get(configKey(host));
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

export class AuthError extends Error {
  readonly exitCode = 1;
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

export class Authenticator {
  private readonly hosts = new Map<string, HostAuth>();
  private readonly tokens = new Map<string, Token>();
  private readonly inflight = new Map<string, Promise<Token>>();

  constructor(
    private readonly transport: Transport,
    private readonly credentials: CredentialLookup,
  ) {}

  /** Authorization for a request to `host` needing `scopes`, when we already know how this host authenticates. */
  async authorization(host: string, scopes: readonly string[]): Promise<string | undefined> {
    const h = this.hosts.get(host);
    if (!h) return undefined;
    if (h.scheme === 'basic') return this.basic(host);
    const key = tokenKey(host, scopes);
    const cached = this.tokens.get(key);
    if (cached && cached.expires > Date.now()) return `Bearer ${cached.value}`;
    return `Bearer ${(await this.token(host, h, scopes)).value}`;
  }

  /** Learns from a 401 how `host` wants to be spoken to; returns the header to retry with. */
  async challenge(host: string, wwwAuthenticate: string | undefined, scopes: readonly string[]): Promise<string> {
    const c = wwwAuthenticate ? parseChallenge(wwwAuthenticate) : undefined;
    if (c?.scheme === 'basic') {
      this.hosts.set(host, { scheme: 'basic' });
      const basic = this.basic(host);
      if (!basic) throw new AuthError(`${host} asks for a user name and password; pass --username and --password-stdin or log in with docker login`);
      return basic;
    }
    if (c?.scheme === 'bearer' && c.params.realm) {
      const h: HostAuth = { scheme: 'bearer', realm: c.params.realm, ...(c.params.service !== undefined && { service: c.params.service }) };
      this.hosts.set(host, h);
      this.tokens.delete(tokenKey(host, scopes));
      return `Bearer ${(await this.token(host, h, scopes)).value}`;
    }
    throw new AuthError(`${host} answered 401 without a usable WWW-Authenticate challenge (${wwwAuthenticate ?? 'none'})`);
  }

  /** Forgets a token the registry refused, so the next attempt fetches a fresh one. */
  invalidate(host: string, scopes: readonly string[]): void {
    this.tokens.delete(tokenKey(host, scopes));
  }

  private basic(host: string): string | undefined {
    const c = this.credentials(host);
    return c ? `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}` : undefined;
  }

  private token(host: string, h: HostAuth, scopes: readonly string[]): Promise<Token> {
    const key = tokenKey(host, scopes);
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchToken(host, h, scopes).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async fetchToken(host: string, h: HostAuth, scopes: readonly string[]): Promise<Token> {
    const url = new URL(h.realm ?? '');
    if (h.service !== undefined) url.searchParams.set('service', h.service);
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { accept: 'application/json' };
    const basic = this.basic(host);
    if (basic) headers.authorization = basic;
    const res = await this.transport.request(url, { headers });
    const text = await res.body.text();
    if (res.status === 401 || res.status === 403) {
      throw new AuthError(
        `the token server ${url.origin} refused ${basic ? 'the credentials' : 'anonymous access'} for ${host} (HTTP ${res.status}); ` +
          (basic ? 'check --username/--password-stdin or docker config.json' : 'pass --username and --password-stdin or log in with docker login'),
      );
    }
    if (res.status !== 200) throw new AuthError(`the token server ${url.origin} answered HTTP ${res.status} for ${host}: ${text.slice(0, 200)}`);
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      throw new AuthError(`the token server ${url.origin} answered something that is not JSON`);
    }
    const value = body.token ?? body.access_token;
    if (!value) throw new AuthError(`the token server ${url.origin} answered without a token`);
    const lifetime = Math.max(10, body.expires_in ?? 60);
    const token = { value, expires: Date.now() + (lifetime - 5) * 1000 };
    this.tokens.set(tokenKey(host, scopes), token);
    return token;
  }
}

function tokenKey(host: string, scopes: readonly string[]): string {
  return `${host} ${[...scopes].sort().join(' ')}`;
}
