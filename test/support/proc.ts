/**
 * Long-running helper processes (registries, file servers) for the tests.
 *
 * Each child gets its own process group, so stop() also reaches its workers.
 * Every live child is SIGKILLed when this process exits (or dies from
 * SIGINT/SIGTERM/SIGHUP), and registered temp dirs are removed, so nothing is
 * left behind even when a test fails or forgets to stop.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync, readSync, fstatSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';

const live = new Set<number>();
const tempDirs = new Set<string>();

function signalGroup(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig);
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

function killAllNow(): void {
  for (const pid of live) signalGroup(pid, 'SIGKILL');
  live.clear();
  for (const dir of tempDirs) {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
  tempDirs.clear();
}

process.on('exit', killAllNow);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  const onSignal = (): void => {
    killAllNow();
    // When nobody else handles the signal, keep its default meaning (terminate).
    if (process.listenerCount(sig) === 1) {
      process.removeListener(sig, onSignal);
      process.kill(process.pid, sig);
    }
  };
  process.on(sig, onSignal);
}

/** A fresh directory under the OS temp dir, removed on process exit if still there. */
export async function makeTempDir(prefix = 'airlock-test-'): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  return dir;
}

/** Removes a directory made by makeTempDir now. */
export async function removeTempDir(dir: string): Promise<void> {
  tempDirs.delete(dir);
  await rm(dir, { recursive: true, force: true });
}

export interface StartOptions {
  cwd?: string;
  /** Added to (and overriding) process.env. */
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr are appended to this file; otherwise they are kept in memory. */
  logFile?: string;
  /** How long stop() waits after SIGTERM before SIGKILL; default 10 s. */
  stopTimeoutMs?: number;
}

export interface TestProcess {
  pid: number;
  /** SIGTERM, then SIGKILL after the timeout; resolves once the process has been reaped. */
  stop(): Promise<void>;
  /** Resolves with the exit code (null when killed by a signal) once the process has ended. */
  exited: Promise<number | null>;
  /** True until the process has ended. */
  readonly running: boolean;
  /** The last maxBytes (default 4000) of the process's output. */
  logTail(maxBytes?: number): string;
}

const MEMORY_LOG_LIMIT = 64 * 1024;

function fileTail(file: string, maxBytes: number): string {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const size = fstatSync(fd).size;
    const len = Math.min(size, maxBytes);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    return buf.toString('utf8');
  } catch (e) {
    return `(cannot read ${file}: ${(e as Error).message})`;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export function startProcess(cmd: string, args: readonly string[], opts: StartOptions = {}): TestProcess {
  let logFd: number | undefined;
  if (opts.logFile !== undefined) logFd = openSync(opts.logFile, 'a');
  const child = spawn(cmd, args, {
    cwd: opts.cwd,
    env: { ...process.env, ...opts.env },
    detached: true, // own process group: stop() signals the whole group
    stdio: logFd === undefined ? ['ignore', 'pipe', 'pipe'] : ['ignore', logFd, logFd],
  });
  if (logFd !== undefined) closeSync(logFd);

  let memLog = '';
  const append = (chunk: Buffer | string): void => {
    memLog += chunk.toString();
    if (memLog.length > MEMORY_LOG_LIMIT) memLog = memLog.slice(-MEMORY_LOG_LIMIT);
  };
  for (const stream of [child.stdout, child.stderr]) {
    if (stream === null) continue;
    stream.on('data', append);
    (stream as unknown as Socket).unref();
  }
  // Do not keep the test process alive just because a child is running;
  // the exit hook kills it.
  child.unref();

  let running = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running = false;
      if (child.pid !== undefined) live.delete(child.pid);
      resolve(code);
    });
    child.once('error', (err) => {
      append(`\n[spawn error] ${err.message}\n`);
      running = false;
      if (child.pid !== undefined) live.delete(child.pid);
      resolve(null);
    });
  });

  const pid = child.pid;
  if (pid === undefined) {
    throw new Error(`could not start ${cmd}`);
  }
  live.add(pid);

  const logTail = (maxBytes = 4000): string => {
    const text = opts.logFile !== undefined ? fileTail(opts.logFile, maxBytes) : memLog.slice(-maxBytes);
    return text === '' ? '(no output)' : text;
  };

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (running) {
        signalGroup(pid, 'SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const timedOut = await Promise.race([
          exited.then(() => false),
          new Promise<boolean>((r) => {
            timer = setTimeout(() => r(true), opts.stopTimeoutMs ?? 10_000);
          }),
        ]);
        clearTimeout(timer);
        if (timedOut) signalGroup(pid, 'SIGKILL');
        await exited;
      }
      // Workers left in the group (if any) go too.
      signalGroup(pid, 'SIGKILL');
      live.delete(pid);
    })();
    return stopping;
  };

  return {
    pid,
    stop,
    exited,
    get running() {
      return running;
    },
    logTail,
  };
}

/** True when a process with this PID exists (signal 0 probe). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Polls probe() every intervalMs until it returns true, the process exits, or
 * timeoutMs passes; throws with the process's log tail on failure.
 */
export async function waitReady(
  what: string,
  proc: TestProcess,
  probe: () => Promise<boolean>,
  { timeoutMs = 20_000, intervalMs = 100 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  while (true) {
    if (!proc.running) {
      const code = await proc.exited;
      throw new Error(`${what} exited early (code ${code}) before becoming ready:\n${proc.logTail()}`);
    }
    try {
      if (await probe()) return;
    } catch (e) {
      lastError = (e as Error).message;
    }
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(
        `${what} did not become ready within ${timeoutMs} ms${lastError ? ` (last error: ${lastError})` : ''}:\n${proc.logTail()}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
