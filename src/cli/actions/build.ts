import type { BuildFlags } from '../build.js';
import { access, lstat } from 'node:fs/promises';
import path from 'node:path';
import { build, type BuildResult } from '../../build/build.js';
import { defaultCacheDir } from '../../cache/store.js';
import { loadManifest } from '../../manifest/load.js';
import { parseSetArgs } from '../../manifest/vars.js';
import { createProgress, formatBytes } from '../../progress/reporter.js';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { loadBase, type Base } from '../../delta/base.js';
import { BundleError, BundleReader } from '../../bundle/reader.js';
import { loadPrivateKey } from '../../sign/keys.js';
import { failure, usageError } from '../errors.js';
import { dockerConfigCredentials, firstOf, flagCredentials } from '../../http/credentials.js';
import { minRate, parseConcurrency, parseMaxDbAge, parseSplitSize, parsePlatformList, readCredentials, sourceDateEpoch, stallTimeoutMs } from '../options.js';
import { describeDb } from '../../bundle/trivydb.js';
import { printable } from '../../util/printable.js';
import { isRegistryHost } from '../../oci/reference.js';
import { userinfoProblem } from '../../util/url.js';
import { jsonText } from '../json.js';
import type { Plan } from '../../manifest/types.js';
import { loadPolicy } from '../../policy/load.js';
import type { Policy } from '../../policy/types.js';
import { verdictLine } from '../verdicts.js';
import { TOOL } from '../version.js';

export async function buildAction(manifest: string, opts: BuildFlags): Promise<void> {
  let set: Record<string, string>;
  try {
    set = parseSetArgs(opts.set);
  } catch (err) {
    throw usageError((err as Error).message);
  }
  if (opts.list) {
    if (opts.dryRun) throw usageError('--list and --dry-run are two kinds of preview; give one');
    // Before any key, output or network: the manifest alone.
    const { printList } = await import('./list.js');
    printList(await loadManifest(manifest, { set }), opts.json === true);
    return;
  }
  const concurrency = parseConcurrency(opts.concurrency, 8);
  const platforms = parsePlatformList(opts.platform);
  const maxDbAge = parseMaxDbAge(opts.maxDbAge);
  const splitSize = parseSplitSize(opts.splitSize);
  const epoch = sourceDateEpoch();
  const stall = stallTimeoutMs();
  const rate = minRate();
  if (opts.username && opts.authHost.length === 0) {
    throw usageError('--username needs --auth-host HOST (repeatable): credentials go only to the hosts named, never to every registry that asks');
  }
  if (opts.authHost.length > 0 && !opts.username) throw usageError('--auth-host needs --username and --password-stdin');
  for (const host of opts.authHost) {
    // A host that matches no registry would leave the credentials unused without a word; one with a password in it would echo it.
    if (host.includes('@')) throw usageError(`--auth-host ${userinfoProblem(host, host.slice(host.lastIndexOf('@') + 1))}`);
    if (!isRegistryHost(host)) throw usageError(`--auth-host "${printable(host)}": not a registry host; write it as in image references, HOST or HOST:PORT (e.g. ghcr.io, registry.example.com:5000)`);
  }
  if (!opts.dryRun && !opts.output) throw usageError('give the bundle to write with -o BUNDLE (or use --dry-run)');
  if (!opts.dryRun && !opts.key) throw usageError('give the signing key with --key KEY (make one with airlock keygen)');
  // Everything is checked before the first download.
  const plan = await loadManifest(manifest, { set });
  const key = opts.key && !opts.dryRun ? await loadPrivateKey(opts.key).catch((e: Error) => Promise.reject(failure(e.message))) : undefined;
  if (opts.output) await checkWritableDir(opts.output);
  const bases: Base[] = [];
  for (const file of opts.base) bases.push(await loadBase(file));
  const policy = await buildPolicy(opts, plan);
  const credentials = await readCredentials(opts.username, opts.passwordStdin);

  const progress = createProgress('airlock build');
  const warn = (m: string) => progress.log(m);
  for (const w of plan.warnings ?? []) warn(`warning: ${w}`);
  for (const w of policy?.warnings ?? []) warn(`warning: ${w}`);
  for (const b of bases) for (const w of key ? await baseWarnings(b, key) : []) warn(w);
  const lookup = firstOf(flagCredentials(credentials, opts.authHost), dockerConfigCredentials({ warn }));
  let result: BuildResult;
  try {
    result = await build({
      plan,
      ...(opts.output && { output: opts.output }),
      ...(key && { key }),
      cacheDir: opts.cache ?? defaultCacheDir(),
      concurrency,
      ...(platforms && { platforms }),
      credentials: lookup,
      warn,
      ...(rate !== undefined && { minBytesPerSecond: rate }),
      dryRun: opts.dryRun === true,
      progress,
      ...(epoch !== undefined && { sourceDateEpoch: epoch }),
      ...(stall !== undefined && { bodyTimeoutMs: stall }),
      tool: TOOL,
      ...(maxDbAge && { maxDbAge }),
      ...(bases.length > 0 && { bases }),
      ...(splitSize !== undefined && { splitSize }),
      ...(opts.attached === false && { attached: false }),
      ...(policy && { policy }),
    });
  } finally {
    progress.finish();
  }
  if (opts.json) process.stdout.write(jsonText(result));
  else printSummary(result, opts.dryRun === true);
  if (result.failed.length > 0) {
    throw failure(
      `${result.failed.length} of ${result.items.length} items failed; no bundle was written:\n` +
        result.failed.map((f) => `  ${f.kind} ${f.name}: ${withoutPrefix(f.error ?? 'failed', `${f.name}: `)}`).join('\n'),
    );
  }
}

/** `--policy`, else `spec.policy`: loaded and checked whole before the first download (exit 2 listing every problem). */
async function buildPolicy(opts: BuildFlags, plan: Plan): Promise<Policy | undefined> {
  const file = opts.policy ?? plan.policy;
  if (file === undefined) return undefined;
  const from = opts.policy !== undefined ? '--policy' : 'spec.policy';
  if (opts.attached === false || plan.attached === false) {
    throw usageError(`${from} checks the signatures carried with the images, and ${opts.attached === false ? '--no-attached' : 'spec.attached: false'} carries none; keep one of them`);
  }
  return loadPolicy(file);
}

/**
 * A bundle base is taken on its word about what the inside holds (a wrong
 * claim only makes the delta's unpack stop before pushing anything); its
 * signature is checked with the build key's public half where it can be, and
 * the warning says when it cannot.
 */
async function baseWarnings(b: Base, key: KeyObject): Promise<string[]> {
  if (b.kind !== 'bundle') return [];
  const name = `--base ${printable(b.file)} (${printable(b.name)} ${printable(b.version)})`;
  const out: string[] = [];
  if (b.unplaced !== undefined) {
    out.push(`${name}: cannot tell which of its images held each blob (${printable(b.unplaced)}); a delta's unpack looks for those blobs only in the repository of the image that needs them`);
  }
  if (b.form === 'bundle.json') return [...out, `${name}: a bare bundle.json, whose signature cannot be checked here; used as it is`];
  if (!b.signed) return [...out, `${name}: the bundle is not signed; used as it is`];
  let reader: BundleReader | undefined;
  try {
    reader = await BundleReader.open(b.file, { pub: createPublicKey(key) });
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    out.push(`${name}: its signature cannot be checked with the public half of --key (signed with another key, or changed); used as it is`);
  } finally {
    await reader?.close();
  }
  return out;
}

function withoutPrefix(text: string, prefix: string): string {
  return text.startsWith(prefix) ? text.slice(prefix.length) : text;
}

async function checkWritableDir(output: string): Promise<void> {
  const dir = path.dirname(path.resolve(output));
  try {
    await access(dir);
  } catch {
    throw usageError(`-o ${output}: folder ${dir} does not exist`);
  }
  if ((await lstat(output).catch(() => undefined))?.isDirectory()) throw usageError(`-o ${output} is a folder; give the name of the bundle file to write`);
}

function printSummary(r: BuildResult, dryRun: boolean): void {
  const lines: string[] = [];
  for (const i of r.items) {
    if (!i.ok) continue;
    const size = i.size !== undefined ? formatBytes(i.size) : 'size unknown';
    const plat = i.platforms && i.platforms.length ? ` [${i.platforms.join(', ')}]` : '';
    lines.push(`${i.kind.padEnd(8)} ${i.name}  ${size}${plat}${i.digest ? `  ${i.digest}` : ''}`);
    const db = r.trivyDbs?.find((d) => d.ref === i.name);
    if (db) lines.push(`         ${describeDb(db)}`);
  }
  lines.push(`total ${formatBytes(r.totalBytes)} in ${r.blobs} blobs and ${r.items.filter((i) => i.kind === 'file').length} files; downloaded ${formatBytes(r.downloadedBytes)}`);
  for (const v of r.signatures ?? []) lines.push(verdictLine(v));
  if (r.attached) lines.push(`attached: ${r.attached} signatures, attestations and SBOMs carried with their images`);
  if (r.external) lines.push(`delta: ${r.external.blobs} blobs and ${r.external.files} files (${formatBytes(r.external.bytes)}) are held by the bases, marked external and left out of the tar`);
  if (r.bundle?.parts && r.bundle.parts.length > 0) {
    lines.push(`wrote ${r.bundle.path} in ${r.bundle.parts.length} parts (${formatBytes(r.bundle.size)} in all, sha256 ${r.bundle.sha256}), and ${r.bundle.path}.sha256 with one line per part:`);
    for (const p of r.bundle.parts) lines.push(`  ${p.path}  ${formatBytes(p.size)}`);
  } else if (r.bundle) lines.push(`wrote ${r.bundle.path} (${formatBytes(r.bundle.size)}), sha256 ${r.bundle.sha256}, and ${r.bundle.path}.sha256`);
  else if (dryRun) lines.push(`dry run: nothing downloaded but manifests${r.signatures ? ' and signatures' : ''}, nothing written`);
  process.stdout.write(lines.map(printable).join('\n') + '\n');
}
