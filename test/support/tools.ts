/**
 * Locating the external tools the integration tests drive, and running them.
 *
 * A missing tool is a hard failure (never a skip): the message names the script
 * that installs everything the tests need.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';

export const INSTALL_HINT = 'run `sudo bash scripts/install-test-deps.sh`';

const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const found = new Map<string, string>();

/** Absolute path of an executable, searched on PATH plus the sbin directories; throws if absent. */
export function requireBinary(name: string): string {
  const cached = found.get(name);
  if (cached !== undefined) return cached;
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== ''), ...EXTRA_DIRS];
  for (const dir of dirs) {
    const candidate = path.join(dir, name);
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
    } catch {
      continue;
    }
    found.set(name, candidate);
    return candidate;
  }
  throw new Error(`${name} not found on PATH: ${INSTALL_HINT}`);
}

export interface RunOptions {
  cwd?: string;
  /** Environment added to (and overriding) process.env. */
  env?: NodeJS.ProcessEnv;
  /** Written to the child's stdin, which is then closed. */
  input?: string | Buffer;
  /** Kill the child (SIGKILL) after this long; default 120 s. */
  timeoutMs?: number;
}

export interface RunResult {
  /** Exit code, or null when the child died from a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Spawns cmd (resolved with requireBinary when it has no slash) without a shell and collects its output. */
export function run(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const file = cmd.includes('/') ? cmd : requireBinary(cmd);
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 120_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') });
    });
    child.stdin.on('error', () => {
      /* the child may exit without reading its input */
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Like run, but throws (with stderr) unless the exit code is 0. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) {
    throw new Error(
      `${cmd} ${args.join(' ')} exited with ${r.code ?? r.signal}:\n${r.stderr}${r.stdout.toString('utf8').slice(0, 2000)}`,
    );
  }
  return r;
}
