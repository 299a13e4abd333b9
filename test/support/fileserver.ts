/**
 * A real nginx file server on 127.0.0.1 for the tests: static GET with Range,
 * autoindex, and WebDAV PUT / DELETE / MKCOL into a root directory.
 */
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { request } from 'undici';
import { freePort } from './ports.js';
import { makeTempDir, removeTempDir, startProcess, waitReady } from './proc.js';
import { requireBinary } from './tools.js';

export const DAV_EXT_MODULE = '/usr/lib/nginx/modules/ngx_http_dav_ext_module.so';

export interface FileServerOptions {
  /** Directory served and written to; default a fresh temp dir (removed by stop()). */
  root?: string;
  /** HTTP basic auth on every request (htpasswd with a {PLAIN} password). */
  basicAuth?: { username: string; password: string };
}

export interface TestFileServer {
  /** "http://127.0.0.1:PORT" (no trailing slash) */
  url: string;
  root: string;
  port: number;
  /** Temp dir holding nginx.conf, logs, pid and temp paths; removed by stop(). */
  dir: string;
  pid: number;
  logTail(maxBytes?: number): string;
  stop(): Promise<void>;
}

function nginxConf(prefix: string, root: string, port: number, htpasswd?: string): string {
  const q = (p: string): string => JSON.stringify(p); // nginx accepts double-quoted strings
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  return [
    existsSync(DAV_EXT_MODULE) ? `load_module ${q(DAV_EXT_MODULE)};` : '',
    // As root without `user`, workers would run as nobody and could not write the temp dirs.
    isRoot ? 'user root;' : '',
    'daemon off;',
    'master_process on;',
    'worker_processes 1;',
    `pid ${q(path.join(prefix, 'nginx.pid'))};`,
    `error_log ${q(path.join(prefix, 'error.log'))} warn;`,
    'events { worker_connections 256; }',
    'http {',
    '  default_type application/octet-stream;',
    '  types { text/html html; text/plain txt; application/json json; }',
    `  access_log ${q(path.join(prefix, 'access.log'))};`,
    `  client_body_temp_path ${q(path.join(prefix, 'tmp', 'client_body'))};`,
    `  proxy_temp_path ${q(path.join(prefix, 'tmp', 'proxy'))};`,
    `  fastcgi_temp_path ${q(path.join(prefix, 'tmp', 'fastcgi'))};`,
    `  uwsgi_temp_path ${q(path.join(prefix, 'tmp', 'uwsgi'))};`,
    `  scgi_temp_path ${q(path.join(prefix, 'tmp', 'scgi'))};`,
    '  sendfile on;',
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    server_name localhost;',
    `    root ${q(root)};`,
    '    autoindex on;',
    '    dav_methods PUT DELETE MKCOL;',
    '    create_full_put_path on;',
    '    dav_access user:rw group:r all:r;',
    '    client_max_body_size 0;',
    htpasswd ? `    auth_basic "airlock test"; auth_basic_user_file ${q(htpasswd)};` : '',
    '  }',
    '}',
    '',
  ].join('\n');
}

const START_ATTEMPTS = 3;

export async function startFileServer(opts: FileServerOptions = {}): Promise<TestFileServer> {
  const bin = requireBinary('nginx');
  const dir = await makeTempDir('airlock-nginx-');
  try {
    await mkdir(path.join(dir, 'tmp'));
    const root = opts.root ?? path.join(dir, 'root');
    await mkdir(root, { recursive: true });
    const confFile = path.join(dir, 'nginx.conf');
    const errorLog = path.join(dir, 'error.log');
    const htpasswd = opts.basicAuth ? path.join(dir, 'htpasswd') : undefined;
    if (htpasswd && opts.basicAuth) await writeFile(htpasswd, `${opts.basicAuth.username}:{PLAIN}${opts.basicAuth.password}\n`);

    let lastError: Error | undefined;
    for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      await writeFile(confFile, nginxConf(dir, root, port, htpasswd));
      await writeFile(errorLog, '');
      // -e: log startup errors here too, not to the compiled-in /var/log/nginx/error.log.
      const proc = startProcess(bin, ['-p', dir, '-c', confFile, '-e', errorLog], { cwd: dir, logFile: errorLog });
      try {
        await waitReady(`nginx on 127.0.0.1:${port}`, proc, async () => {
          const res = await request(`${url}/`, { headersTimeout: 2000, bodyTimeout: 2000 });
          await res.body.dump();
          return res.statusCode === (htpasswd ? 401 : 200);
        });
      } catch (e) {
        await proc.stop();
        lastError = e as Error;
        if (/address already in use/i.test(proc.logTail())) continue;
        throw e;
      }
      return {
        url,
        root,
        port,
        dir,
        pid: proc.pid,
        logTail: (n?: number) => proc.logTail(n),
        stop: async () => {
          await proc.stop();
          await removeTempDir(dir);
        },
      };
    }
    throw lastError ?? new Error('nginx did not start');
  } catch (e) {
    await removeTempDir(dir);
    throw e;
  }
}
