// Where credentials come from, each scoped to a host (SPEC §1): flags for the
// hosts named with --auth-host (build) or the --registry host (unpack); else
// docker's config.json: `auths` for that host, or its `credHelpers` entry, or
// `credsStore`, run with the `docker-credential-NAME get` protocol (server
// URL on standard input, `{"Username": …, "Secret": …}` on standard output).
import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import path from 'node:path';
import { READ_BOUNDS, readRegularSync } from '../fsx/safe.js';

export interface Credential {
  readonly username: string;
  readonly password: string;
}

/** Credentials for a host (`name[:port]` as in a URL), or undefined for anonymous. */
export type CredentialLookup = (host: string) => Promise<Credential | undefined>;

const DOCKER_HUB = ['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com'];
/** The name Docker Hub credentials are filed under, by docker login and the helpers. */
const DOCKER_HUB_SERVER = 'https://index.docker.io/v1/';

/** One name per host: Docker Hub has many. */
export function credentialKey(host: string): string {
  const h = host.toLowerCase().replace(/:443$/, '');
  return DOCKER_HUB.includes(h) ? 'docker.io' : h;
}

/** `--username/--password-stdin` for exactly these hosts. */
export function flagCredentials(credential: Credential | undefined, hosts: readonly string[]): CredentialLookup {
  const keys = new Set(hosts.map(credentialKey));
  return async (host) => (credential && keys.has(credentialKey(host)) ? credential : undefined);
}

/** The first source that knows the host wins; each host is looked up once. */
export function firstOf(...sources: CredentialLookup[]): CredentialLookup {
  const memo = new Map<string, Promise<Credential | undefined>>();
  return (host) => {
    const key = credentialKey(host);
    let p = memo.get(key);
    if (!p) {
      p = (async () => {
        for (const s of sources) {
          const c = await s(host);
          if (c) return c;
        }
        return undefined;
      })();
      memo.set(key, p);
    }
    return p;
  };
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
}

export interface DockerConfigOptions {
  env?: NodeJS.ProcessEnv;
  warn?: (message: string) => void;
  /** Seconds a helper may take. */
  helperTimeoutMs?: number;
}

/** `$DOCKER_CONFIG/config.json` (or `~/.docker/config.json`), read once. */
export function dockerConfigCredentials(o: DockerConfigOptions = {}): CredentialLookup {
  const env = o.env ?? process.env;
  const file = path.join(env.DOCKER_CONFIG ?? path.join(homedir(), '.docker'), 'config.json');
  let config: DockerConfig | undefined;
  const load = (): DockerConfig => {
    if (config) return config;
    try {
      config = JSON.parse(readRegularSync(file, { ...READ_BOUNDS.dockerConfig, follow: true }).toString('utf8')) as DockerConfig;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') o.warn?.(`warning: ignoring ${file}: ${(err as Error).message}`);
      config = {};
    }
    return config;
  };
  return async (host) => {
    const c = load();
    const key = credentialKey(host);
    for (const [name, entry] of Object.entries(c.auths ?? {})) {
      if (credentialKey(serverHost(name)) !== key) continue;
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
      if (username && password !== undefined && password !== '') return { username, password };
    }
    const helper = Object.entries(c.credHelpers ?? {}).find(([name]) => credentialKey(serverHost(name)) === key)?.[1] ?? c.credsStore;
    if (!helper) return undefined;
    return runHelper(helper, key === 'docker.io' ? DOCKER_HUB_SERVER : host, o);
  };
}

/** `https://index.docker.io/v1/` → `index.docker.io`; a bare host stays as it is. */
function serverHost(name: string): string {
  return name.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
}

function runHelper(name: string, server: string, o: DockerConfigOptions): Promise<Credential | undefined> {
  if (!/^[A-Za-z0-9._-]+$/.test(name)) {
    o.warn?.(`warning: ignoring the credential helper name ${JSON.stringify(name)} in docker config.json`);
    return Promise.resolve(undefined);
  }
  const program = `docker-credential-${name}`;
  return new Promise((resolve) => {
    const child = execFile(program, ['get'], { timeout: o.helperTimeoutMs ?? 30_000, maxBuffer: 1024 * 1024, env: o.env ?? process.env }, (err, stdout, stderr) => {
      if (err) {
        const said = `${stdout}${stderr}`.trim();
        // The protocol's answer for "no credentials for this server": anonymous, quietly.
        if (/credentials not found/i.test(said)) return resolve(undefined);
        o.warn?.(`warning: ${program} get for ${server} failed (${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'not on PATH' : said.slice(0, 200) || err.message}); going on without credentials for it`);
        return resolve(undefined);
      }
      try {
        const out = JSON.parse(stdout) as { Username?: unknown; Secret?: unknown };
        if (typeof out.Username === 'string' && typeof out.Secret === 'string' && out.Secret !== '') {
          if (out.Username === '<token>') {
            o.warn?.(`warning: ${program} holds an identity token for ${server}; airlock cannot use identity tokens yet, going on without credentials`);
            return resolve(undefined);
          }
          return resolve({ username: out.Username, password: out.Secret });
        }
      } catch {
        // fall through
      }
      o.warn?.(`warning: ${program} get for ${server} answered something that is not {"Username","Secret"}; going on without credentials for it`);
      resolve(undefined);
    });
    child.stdin?.end(server);
  });
}
