/**
 * A real CNCF distribution registry (docker-registry 2.8) on 127.0.0.1 for the
 * tests: plain HTTP, TLS, TLS + htpasswd basic auth, or token auth.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import bcrypt from 'bcryptjs';
import { Agent, request } from 'undici';
import { stringify } from 'yaml';
import { freePort } from './ports.js';
import { makeTempDir, removeTempDir, startProcess, waitReady, type TestProcess } from './proc.js';
import { makeCA, makeServerCert } from './tls.js';
import { requireBinary } from './tools.js';

export interface RegistryOptions {
  /** Serve HTTPS with a certificate from a CA made for this registry (implied by basicAuth). */
  tls?: boolean;
  /** htpasswd basic auth (always over TLS). */
  basicAuth?: { username: string; password: string };
  /** Bearer token auth; the registry trusts JWTs signed by a key whose cert chains to rootCertBundle. */
  tokenAuth?: { realm: string; service: string; issuer: string; rootCertBundle: string };
  /** storage.delete.enabled (default true); false: every DELETE answers 405 UNSUPPORTED, as distribution ships. */
  deleteEnabled?: boolean;
}

export interface TestRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  /** "http://127.0.0.1:PORT" or "https://127.0.0.1:PORT" */
  url: string;
  port: number;
  /** PEM CA that signed the server certificate (TLS variants only). */
  caFile?: string;
  username?: string;
  password?: string;
  /** Storage root directory of the registry. */
  dataDir: string;
  /** Temp dir holding config, certs, log and data; removed by stop(). */
  dir: string;
  configFile: string;
  pid: number;
  logTail(maxBytes?: number): string;
  /** Stops the process, keeping its storage and config (garbage-collect wants the registry stopped). */
  pause(): Promise<void>;
  /** Starts it again after pause(), on the same port and storage. */
  resume(): Promise<void>;
  /** Stops the process (SIGTERM, then SIGKILL) and removes the temp dir. */
  stop(): Promise<void>;
}

const START_ATTEMPTS = 3;

export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  const bin = requireBinary('docker-registry');
  const dir = await makeTempDir('airlock-registry-');
  try {
    const dataDir = path.join(dir, 'data');
    await mkdir(dataDir);
    const useTls = opts.tls === true || opts.basicAuth !== undefined;

    let caFile: string | undefined;
    let tlsConf: { certificate: string; key: string } | undefined;
    if (useTls) {
      const certDir = path.join(dir, 'certs');
      await mkdir(certDir);
      const ca = await makeCA(certDir);
      const server = await makeServerCert(certDir, ca, { ip: '127.0.0.1', dns: ['localhost'] });
      caFile = ca.caCert;
      tlsConf = { certificate: server.cert, key: server.key };
    }

    let auth: Record<string, unknown> | undefined;
    if (opts.basicAuth !== undefined) {
      const htpasswd = path.join(dir, 'htpasswd');
      // distribution only accepts bcrypt entries; cost 4 keeps per-request checks cheap.
      const hash = bcrypt.hashSync(opts.basicAuth.password, 4);
      await writeFile(htpasswd, `${opts.basicAuth.username}:${hash}\n`, { mode: 0o600 });
      auth = { htpasswd: { realm: 'airlock-test', path: htpasswd } };
    } else if (opts.tokenAuth !== undefined) {
      auth = {
        token: {
          realm: opts.tokenAuth.realm,
          service: opts.tokenAuth.service,
          issuer: opts.tokenAuth.issuer,
          rootcertbundle: opts.tokenAuth.rootCertBundle,
        },
      };
    }

    const ca = caFile === undefined ? undefined : await readFile(caFile);
    // Environment variables REGISTRY_* would override the config file: drop them.
    const env: NodeJS.ProcessEnv = {};
    for (const k of Object.keys(process.env)) if (k.startsWith('REGISTRY_')) env[k] = undefined;

    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const port = await freePort();
      const host = `127.0.0.1:${port}`;
      const url = `${useTls ? 'https' : 'http'}://${host}`;
      const config: Record<string, unknown> = {
        version: 0.1,
        log: { level: 'warn', formatter: 'text', accesslog: { disabled: true } },
        storage: {
          filesystem: { rootdirectory: dataDir },
          delete: { enabled: opts.deleteEnabled ?? true },
          maintenance: { uploadpurging: { enabled: false } },
        },
        http: {
          addr: host,
          secret: randomBytes(24).toString('hex'),
          headers: { 'X-Content-Type-Options': ['nosniff'] },
          ...(tlsConf === undefined ? {} : { tls: tlsConf }),
        },
        health: { storagedriver: { enabled: false } },
        ...(auth === undefined ? {} : { auth }),
      };
      const configFile = path.join(dir, 'config.yml');
      await writeFile(configFile, stringify(config));
      const logFile = path.join(dir, 'registry.log');
      await writeFile(logFile, '');

      const launch = async (): Promise<TestProcess> => {
        const p = startProcess(bin, ['serve', configFile], { cwd: dir, env, logFile });
        const ready = new Agent({ connect: ca === undefined ? {} : { ca } });
        try {
          await waitReady(`docker-registry on ${host}`, p, async () => {
            const res = await request(`${url}/v2/`, { dispatcher: ready, headersTimeout: 2000, bodyTimeout: 2000 });
            await res.body.dump();
            return res.statusCode === 200 || res.statusCode === 401;
          });
        } catch (e) {
          await p.stop();
          throw e;
        } finally {
          await ready.close();
        }
        return p;
      };
      let proc: TestProcess;
      try {
        proc = await launch();
      } catch (e) {
        lastError = e as Error;
        if (/address already in use/i.test(await readFile(logFile, 'utf8').catch(() => ''))) continue;
        throw e;
      }
      return {
        host,
        url,
        port,
        ...(caFile === undefined ? {} : { caFile }),
        ...(opts.basicAuth === undefined ? {} : opts.basicAuth),
        dataDir,
        dir,
        configFile,
        get pid() {
          return proc.pid;
        },
        logTail: (n?: number) => proc.logTail(n),
        pause: () => proc.stop(),
        resume: async () => {
          proc = await launch();
        },
        stop: async () => {
          await proc.stop();
          await removeTempDir(dir);
        },
      };
    }
    throw lastError ?? new Error('docker-registry did not start');
  } catch (e) {
    await removeTempDir(dir);
    throw e;
  }
}
