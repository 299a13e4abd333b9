// Runs the real CLI (bin/airlock → dist/, built by `npm test`'s pretest) as a person would.
import { spawn } from 'node:child_process';
import path from 'node:path';

export const AIRLOCK = path.resolve(import.meta.dirname, '..', '..', 'bin', 'airlock');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runAirlock(args: string[], stdin?: string | Buffer, opts: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return runProcess([process.execPath, AIRLOCK, ...args], { ...opts, ...(stdin !== undefined && { stdin }) });
}

/** Runs a program to its end with `stdin` written to it; collects stdout and stderr as text. */
export function runProcess(argv: readonly string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; stdin?: string | Buffer } = {}): Promise<CliResult> {
  const [cmd = '', ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    // A reader that refuses a bundle on stdin stops reading it: the rest of the write then fails (EPIPE), as it would for cat.
    child.stdin.on('error', () => undefined);
    child.stdin.end(opts.stdin ?? '');
  });
}
