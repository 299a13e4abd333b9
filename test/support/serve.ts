// Runs `airlock serve` as a child process on free ports and reads back where it listens.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { AIRLOCK } from './cli.js';

export interface Served {
  readonly child: ChildProcess;
  readonly registry: string;
  /** host:port of the registry. */
  readonly host: string;
  readonly files: string;
  log(): string;
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** `env` is added to this process's environment (e.g. AIRLOCK_SERVE_* limits). */
export async function startServe(bundle: string, pub: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Served> {
  const child = spawn(process.execPath, [AIRLOCK, 'serve', bundle, '--pub', pub, '--listen', '127.0.0.1:0', '--files-listen', '127.0.0.1:0', ...extra], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let out = '';
  let err = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (/^files \S+$/m.test(out)) resolve();
    });
    void exited.then(([code]) => reject(new Error(`airlock serve exited ${code}:\n${err}`)));
    setTimeout(() => reject(new Error(`airlock serve did not start:\n${err}`)), 30_000).unref();
  });
  await ready;
  const registry = /^registry (\S+)$/m.exec(out)?.[1] ?? '';
  const files = /^files (\S+)$/m.exec(out)?.[1] ?? '';
  return {
    child,
    registry,
    host: new URL(registry).host,
    files,
    log: () => err,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const [code, sig] = await exited;
      return { code, signal: sig };
    },
  };
}
