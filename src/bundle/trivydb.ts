// How old is a Trivy DB? Its layer (db.tar.gz, javadb.tar.gz) is a gzip tar
// holding the database and a metadata.json whose UpdatedAt and NextUpdate say
// when it was built and when the next one is due. build reads it once from the
// cache and records the dates in the signed bundle.json; inspect shows them
// and build and unpack warn when the DB is older than --max-db-age.
//
// The layer is 50 MB to several GB and comes from a registry: it is streamed
// through gunzip and a tar parser that stops at metadata.json (trivy-db writes
// it last, so the database itself is decompressed and dropped on the way),
// with bounds on entries, bytes and metadata.json's size. Whatever goes wrong
// is a "cannot tell" note, never a crash.
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';
import type { Descriptor } from '../oci/graph.js';
import type { BundleImage, TrivyDbInfo } from './format.js';
import { jsonDepthProblem } from '../util/json.js';

export const TRIVY_DB_LAYER = 'application/vnd.aquasec.trivy.db.layer.v1.tar+gzip';
export const TRIVY_JAVA_DB_LAYER = 'application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip';
const DB_ROLES: ReadonlySet<string> = new Set(['trivy-db', 'trivy-java-db']);

const MAX_METADATA = 64 * 1024;
const MAX_ENTRIES = 1000;
/** Uncompressed bytes walked past before giving up (a gzip bomb costs CPU, not more). */
const MAX_SCANNED = 64 * 1024 * 1024 * 1024;
const MAX_PROBLEM = 200;

/** RFC 3339 as Go's time.Time writes it (fractions up to nanoseconds). */
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/** Milliseconds since the epoch of an RFC 3339 time, or undefined when it is not one. */
export function parseTime(v: unknown): number | undefined {
  if (typeof v !== 'string' || !RFC3339.test(v)) return undefined;
  const ms = Date.parse(v);
  return Number.isFinite(ms) ? ms : undefined;
}

/** The first Trivy DB layer of a graph's blobs, if any. */
export function trivyDbLayer(blobs: readonly Descriptor[]): Descriptor | undefined {
  return blobs.find((d) => d.mediaType === TRIVY_DB_LAYER || d.mediaType === TRIVY_JAVA_DB_LAYER);
}

export function isTrivyDbRole(role: string | undefined): boolean {
  return role !== undefined && DB_ROLES.has(role);
}

/** What metadata.json says, from its bytes; hostile input. */
export function parseMetadata(bytes: Buffer): TrivyDbInfo {
  const deep = jsonDepthProblem(bytes);
  if (deep) return { problem: `metadata.json ${deep}` };
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch {
    return { problem: 'metadata.json is not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { problem: 'metadata.json is not a JSON object' };
  const m = v as Record<string, unknown>;
  const updated = parseTime(m.UpdatedAt);
  if (updated === undefined) return { problem: 'metadata.json has no UpdatedAt time (RFC 3339)' };
  const next = parseTime(m.NextUpdate);
  return {
    updatedAt: new Date(updated).toISOString(),
    ...(next !== undefined && { nextUpdate: new Date(next).toISOString() }),
    ...(Number.isSafeInteger(m.Version) && (m.Version as number) >= 0 && { version: m.Version as number }),
  };
}

/**
 * Reads metadata.json out of a DB layer (gzip tar) streamed from `source`,
 * stopping as soon as it is found. Never throws: a layer that is not a gzip
 * tar, has no metadata.json or a bad one gives `{ problem }`. Destroys `source`.
 */
export async function readTrivyDbInfo(source: Readable): Promise<TrivyDbInfo> {
  const gunzip = createGunzip();
  const extract = tar.extract();
  // Stopping early destroys the streams: the pipeline's "premature close" is expected.
  const feed = pipeline(source, gunzip, extract);
  feed.catch(() => undefined);
  let entries = 0;
  let scanned = 0;
  try {
    for await (const entry of extract) {
      const h = entry.header;
      if (++entries > MAX_ENTRIES) return { problem: `no metadata.json in the first ${MAX_ENTRIES} entries of the layer` };
      scanned += h.size;
      if (scanned > MAX_SCANNED) return { problem: `no metadata.json in the first ${MAX_SCANNED / 1024 ** 3} GiB of the layer` };
      if (h.name.replace(/^(\.\/)+/, '') === 'metadata.json' && (h.type === 'file' || h.type === 'contiguous-file')) {
        if (h.size > MAX_METADATA) return { problem: `metadata.json is ${h.size} bytes, more than ${MAX_METADATA}` };
        const chunks: Buffer[] = [];
        let n = 0;
        for await (const c of entry as AsyncIterable<Buffer>) {
          n += c.length;
          if (n > MAX_METADATA) return { problem: `metadata.json is more than ${MAX_METADATA} bytes` };
          chunks.push(c);
        }
        return parseMetadata(Buffer.concat(chunks));
      }
      entry.resume();
    }
    return { problem: 'the layer holds no metadata.json' };
  } catch (err) {
    return { problem: `the layer is not a readable gzip tar (${shorten((err as Error).message)})` };
  } finally {
    source.destroy();
    gunzip.destroy();
    extract.destroy();
  }
}

function shorten(s: string): string {
  return s.length > MAX_PROBLEM ? `${s.slice(0, MAX_PROBLEM)}…` : s;
}

/** One Trivy DB in a bundle, for inspect, build and unpack (text and --json). */
export interface TrivyDbReport {
  readonly ref: string;
  readonly role?: string;
  readonly updatedAt?: string;
  readonly nextUpdate?: string;
  readonly version?: number;
  /** Seconds from UpdatedAt to now. */
  readonly ageSeconds?: number;
  /** Older than --max-db-age (build, unpack; absent when the check is off or the age unknown). */
  readonly stale?: boolean;
  /** Why the age is unknown. */
  readonly problem?: string;
}

export interface MaxDbAge {
  readonly ms: number;
  /** As the user wrote it, e.g. `7d`. */
  readonly label: string;
}

/** Every image entry that is a Trivy DB (by role, or by the dates build recorded). */
export function trivyDbReports(images: readonly BundleImage[], maxAge?: MaxDbAge, now = Date.now()): TrivyDbReport[] {
  const out: TrivyDbReport[] = [];
  for (const img of images) {
    if (!img.trivyDb && !isTrivyDbRole(img.role)) continue;
    const base = { ref: img.ref, ...(img.role && { role: img.role }) };
    const db = img.trivyDb;
    const updated = parseTime(db?.updatedAt);
    if (!db || updated === undefined) {
      out.push({ ...base, problem: db?.problem ?? (db ? 'no UpdatedAt was recorded' : 'bundle.json records no DB dates (the bundle was built by an older airlock)') });
      continue;
    }
    const ageMs = now - updated;
    out.push({
      ...base,
      updatedAt: db.updatedAt as string,
      ...(db.nextUpdate !== undefined && { nextUpdate: db.nextUpdate }),
      ...(db.version !== undefined && { version: db.version }),
      ageSeconds: Math.floor(ageMs / 1000),
      ...(maxAge && { stale: ageMs > maxAge.ms }),
    });
  }
  return out;
}

/** The warnings for --max-db-age (none when it is off). */
export function trivyDbWarnings(reports: readonly TrivyDbReport[], maxAge: MaxDbAge | undefined, advice: string): string[] {
  if (!maxAge) return [];
  const out: string[] = [];
  for (const r of reports) {
    const what = `${r.role ?? 'Trivy DB'} ${r.ref}`;
    if (r.problem !== undefined) out.push(`warning: cannot tell the DB's age of ${what}: ${r.problem}`);
    else if (r.stale) out.push(`warning: ${what} was updated ${formatAge((r.ageSeconds ?? 0) * 1000)} ago (UpdatedAt ${r.updatedAt}), older than --max-db-age ${maxAge.label}; ${advice}`);
  }
  return out;
}

/** One line about a DB's dates, for inspect. */
export function describeDb(r: TrivyDbReport): string {
  if (r.problem !== undefined) return `cannot tell the DB's age: ${r.problem}`;
  const age = r.ageSeconds !== undefined ? (r.ageSeconds < 0 ? `${formatAge(-r.ageSeconds * 1000)} in the future: check the clock` : `${formatAge(r.ageSeconds * 1000)} ago`) : 'age unknown';
  return `DB updated ${r.updatedAt} (${age})${r.nextUpdate ? `, next update ${r.nextUpdate}` : ''}`;
}

export function formatAge(ms: number): string {
  const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return plural(Math.max(0, minutes), 'minute');
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return plural(hours, 'hour');
  return plural(Math.floor(hours / 24), 'day');
}
