// Option parsing shared by commands: numbers, platform lists, credentials.
import { parsePlatform } from '../oci/platform.js';
import type { Credential } from '../http/credentials.js';
import type { MaxDbAge } from '../bundle/trivydb.js';
import { usageError } from './errors.js';

export function parseConcurrency(value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256) throw usageError(`--concurrency ${value}: give a whole number from 1 to 256`);
  return n;
}

/** `--jobs N`: threads that hash entries (verify, unpack); the default is the cores, at most 8. */
export function parseJobs(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d{1,3}$/.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 64)) throw usageError(`--jobs ${value}: give a whole number from 1 to 64 (threads that hash entries; 1 hashes on one core)`);
  return n;
}

export function parsePlatformList(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw usageError('--platform: give a comma-separated list such as linux/amd64,linux/arm64');
  for (const p of list) {
    try {
      parsePlatform(p);
    } catch (err) {
      throw usageError(`--platform: ${(err as Error).message}`);
    }
  }
  return list;
}

export async function readCredentials(username: string | undefined, passwordStdin: boolean | undefined): Promise<Credential | undefined> {
  if (passwordStdin && !username) throw usageError('--password-stdin needs --username');
  if (!username) return undefined;
  if (!passwordStdin) throw usageError('--username needs --password-stdin (the password is never taken on the command line)');
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (!password) throw usageError('--password-stdin: standard input was empty');
  return { username, password };
}

/**
 * AIRLOCK_MIN_RATE: bytes per second a body must average over each
 * AIRLOCK_STALL_TIMEOUT window (default 1024); slower counts as stalled and is
 * resumed. 0 turns the rule off.
 */
export function minRate(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.AIRLOCK_MIN_RATE;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw usageError(`AIRLOCK_MIN_RATE=${v}: give bytes per second, e.g. 1024 (0 turns it off)`);
  return Number(v);
}

export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v)) throw usageError(`SOURCE_DATE_EPOCH=${v}: give whole seconds since 1970`);
  return Number(v);
}

/**
 * AIRLOCK_STALL_TIMEOUT: seconds without a byte before a transfer counts as
 * stalled and is retried (default 60); for links that stall rather than drop.
 */
export function stallTimeoutMs(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.AIRLOCK_STALL_TIMEOUT;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+(\.\d+)?$/.test(v) || Number(v) <= 0) throw usageError(`AIRLOCK_STALL_TIMEOUT=${v}: give seconds, e.g. 60`);
  return Math.round(Number(v) * 1000);
}

/**
 * `--max-db-age`: how old a Trivy DB may be before build and unpack warn
 * (default 7d); whole days (`7d`) or hours (`36h`); `0` turns the check off.
 */
export function parseMaxDbAge(value: string | undefined): MaxDbAge | undefined {
  const v = value ?? '7d';
  const m = /^(\d{1,6})([dh])$/.exec(v);
  if (v === '0' || (m && Number(m[1]) === 0)) return undefined;
  if (!m) throw usageError(`--max-db-age ${v}: give days or hours, e.g. 7d or 36h (0 turns the check off)`);
  return { ms: Number(m[1]) * (m[2] === 'd' ? 86_400_000 : 3_600_000), label: v };
}

/** `--split-size`: `700M`, `4G`, `512K` or bytes; K, M and G are powers of 1024. */
export function parseSplitSize(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const m = /^([1-9][0-9]*)([KMG]?)$/i.exec(value.trim());
  const n = m ? Number(m[1]) * 1024 ** ['', 'K', 'M', 'G'].indexOf((m[2] ?? '').toUpperCase()) : NaN;
  if (!Number.isSafeInteger(n) || n < 1) throw usageError(`--split-size ${value}: give a size such as 700M or 4G (K, M, G are powers of 1024)`);
  return n;
}
