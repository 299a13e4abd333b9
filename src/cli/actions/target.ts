// The target side of unpack and sync: the flags checked (all before anything
// is pushed), and what is written and printed once the target holds everything.
import type { KeyObject } from 'node:crypto';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { parseTargetRegistry, type Layout, type TargetRegistry } from '../../bundle/targets.js';
import { trivyDbReports, type MaxDbAge } from '../../bundle/trivydb.js';
import { writeReceipt } from '../../delta/receipt.js';
import { schemeFor, type HostSettings } from '../../http/agent.js';
import type { Credential } from '../../http/credentials.js';
import { formatBytes, type Progress } from '../../progress/reporter.js';
import type { FileTarget } from '../../unpack/files-target.js';
import type { UnpackResult } from '../../unpack/unpack.js';
import { REFERRERS_FALLBACK, type AttachedStats, type ReferrersFallback } from '../../unpack/attached.js';
import { printable } from '../../util/printable.js';
import { httpUrlProblem, redactUserinfo } from '../../util/url.js';
import { failure, usageError } from '../errors.js';
import { jsonText } from '../json.js';
import { parseConcurrency, parseMaxDbAge, readCredentials, sourceDateEpoch } from '../options.js';
import type { TargetFlags } from '../target.js';
import { verdictLine } from '../verdicts.js';
import { loadPolicy } from '../../policy/load.js';
import type { InsideOptions } from '../../sign/publisher/carried.js';
import { TOOL } from '../version.js';

export interface Target {
  readonly registry: TargetRegistry;
  readonly layout: Layout;
  /** TLS settings for the --registry host only. */
  readonly settings: HostSettings;
  readonly concurrency: number;
  readonly maxDbAge?: MaxDbAge;
  /** --username/--password-stdin: for the --registry host only. */
  readonly credentials?: Credential;
  readonly chunkSize?: number;
  /** --referrers-fallback. */
  readonly referrersFallback: ReferrersFallback;
  /** --policy (loaded, with --trusted-root) and --trusted-root: the publishers' signatures are checked against these (SPEC §9). */
  readonly signatures: InsideOptions;
}

/** Every target flag checked (usage errors, exit 2) before anything is read or pushed; reads the password from stdin. */
export async function parseTarget(opts: TargetFlags): Promise<Target> {
  if (!opts.registry) throw usageError('give the private registry with --registry HOST[:PORT][/PREFIX]');
  if (!opts.filesDir === !opts.filesUrl) throw usageError('give exactly one of --files-dir DIR and --files-url URL');
  if (opts.layout !== 'flat' && opts.layout !== 'host') throw usageError(`--layout ${opts.layout}: write flat or host`);
  const { registry, settings } = await parseRegistryFlags({ ...opts, registry: opts.registry });
  checkFileUrls(opts);
  const referrersFallback = (opts.referrersFallback ?? 'auto') as ReferrersFallback;
  if (!REFERRERS_FALLBACK.includes(referrersFallback)) throw usageError(`--referrers-fallback ${opts.referrersFallback}: write auto, always or never`);
  if (opts.receipt !== undefined) await checkReceiptPath(opts.receipt);
  if (opts.report !== undefined) await checkReportDir(opts.report);
  await checkFilesDir(opts.filesDir);
  const concurrency = parseConcurrency(opts.concurrency, 8);
  const maxDbAge = parseMaxDbAge(opts.maxDbAge);
  const credentials = await readCredentials(opts.username, opts.passwordStdin);
  const chunkSize = uploadChunkSize();
  const signatures = await insideSignatureOptions(opts);
  return {
    signatures,
    registry,
    layout: opts.layout,
    settings,
    concurrency,
    referrersFallback,
    ...(maxDbAge && { maxDbAge }),
    ...(credentials && { credentials }),
    ...(chunkSize && { chunkSize }),
  };
}

/** --registry, --plain-http, --insecure and --ca-file checked (usage errors): the registry and its TLS settings. */
export async function parseRegistryFlags(opts: Pick<TargetFlags, 'plainHttp' | 'insecure' | 'caFile'> & { registry: string }): Promise<{ registry: TargetRegistry; settings: HostSettings }> {
  if (opts.plainHttp && (opts.insecure || opts.caFile)) throw usageError('--plain-http contradicts --insecure/--ca-file (those mean HTTPS)');
  let registry;
  try {
    registry = parseTargetRegistry(opts.registry);
  } catch (err) {
    throw usageError((err as Error).message);
  }
  if (opts.caFile) await access(opts.caFile).catch(() => Promise.reject(usageError(`--ca-file ${opts.caFile}: no such file`)));
  return {
    registry,
    settings: {
      ...(opts.plainHttp && { plainHttp: true }),
      ...(opts.insecure && { insecure: true }),
      ...(opts.caFile && { caFile: opts.caFile }),
    },
  };
}

/** --files-url and --fileserver-url: http(s) URLs with a host. */
export function checkFileUrls(opts: Pick<TargetFlags, 'filesUrl' | 'fileserverUrl'>): void {
  for (const [flag, url] of [['--files-url', opts.filesUrl], ['--fileserver-url', opts.fileserverUrl]] as const) {
    if (url === undefined) continue;
    // The problem quotes the value, credentials hidden.
    const problem = httpUrlProblem(url) ?? (/^https?:\/\/[^/]/i.test(url) ? undefined : `"${redactUserinfo(url)}" has no host; write an http:// or https:// URL`);
    if (problem) throw usageError(`${flag} ${problem}`);
  }
}

export async function checkFilesDir(dir: string | undefined): Promise<void> {
  if (dir) await access(dir).catch(() => Promise.reject(usageError(`--files-dir ${dir}: no such folder; create it first`)));
}

/** Refuses, before anything is pushed, a receipt path whose folder is missing or that names a folder. */
export async function checkReceiptPath(file: string): Promise<void> {
  const dir = path.dirname(file);
  const d = await stat(dir).catch(() => undefined);
  if (!d?.isDirectory()) throw usageError(`--receipt ${file}: no such folder ${dir}; create it first`);
  const f = await stat(file).catch(() => undefined);
  if (f?.isDirectory()) throw usageError(`--receipt ${file}: is a folder; give a file name`);
}

/** --policy loaded whole (exit 2 listing every problem) and --trusted-root checked, before anything is read or pushed. */
async function insideSignatureOptions(opts: TargetFlags): Promise<InsideOptions> {
  if (opts.trustedRoot !== undefined) await access(opts.trustedRoot).catch(() => Promise.reject(usageError(`--trusted-root ${opts.trustedRoot}: no such file`)));
  const trustedRoot = opts.trustedRoot !== undefined ? { trustedRoot: opts.trustedRoot } : {};
  if (opts.policy === undefined) return trustedRoot;
  return { policy: await loadPolicy(opts.policy, trustedRoot), ...trustedRoot };
}

/**
 * Once the target holds everything: the config (--emit-config), the receipt
 * (last: it claims the target holds all of it), and the report on stdout.
 * `extra` adds a command's own fields to the JSON and lines to the text.
 */
export async function finishTarget(
  result: UnpackResult,
  target: Target,
  opts: TargetFlags,
  files: FileTarget,
  progress: Pick<Progress, 'log'>,
  extra: { via?: 'sync'; json?: Record<string, unknown>; lines?: string[]; report?: { source: string; verifiedBy?: KeyObject } } = {},
): Promise<void> {
  const scheme = schemeFor(target.registry.host, target.settings);
  const fileserverUrl = (opts.fileserverUrl ?? opts.filesUrl)?.replace(/\/+$/, '');
  let emitted: string[] = [];
  if (opts.emitConfig) {
    const { emitConfig } = await import('../../emit/write.js');
    emitted = await emitConfig(opts.emitConfig, {
      index: result.index,
      registry: target.registry,
      layout: target.layout,
      registryScheme: scheme,
      registryInsecure: scheme === 'http' || opts.insecure === true,
      ...(opts.caFile && { caFile: opts.caFile }),
      ...(fileserverUrl && { fileserverUrl }),
      ...(extra.via && { via: extra.via }),
    }, (line) => progress.log(line));
    if (!fileserverUrl) progress.log('note: no --fileserver-url (or --files-url): the config has no file server URLs (OpenSearch plugins, Falco index and drivers)');
  }
  if (opts.receipt !== undefined && result.receipt) {
    const file = opts.receipt;
    await writeReceipt(file, result.receipt).catch((err: Error) => Promise.reject(failure(`--receipt ${file}: ${err.message}`)));
  }
  let evidence: string[] = [];
  if (opts.report !== undefined && result.receipt) {
    // The evidence of this transfer (SPEC §10): what bundle.json and the receipt say, as `airlock report` draws it.
    const { insideReport } = await import('../../report/model.js');
    const { writeEvidence } = await import('../../report/write.js');
    const epoch = sourceDateEpoch();
    const model = insideReport({ file: extra.report?.source ?? '', via: extra.via ?? 'unpack', index: result.index, receipt: result.receipt, ...(extra.report?.verifiedBy && { verifiedBy: extra.report.verifiedBy }), upToDate: result.upToDate, tool: TOOL, ...(epoch !== undefined && { now: epoch * 1000 }) });
    const dir = opts.report;
    evidence = await writeEvidence(dir, model).catch((err: Error) => Promise.reject(failure(`--report ${dir}: ${err.message}`)));
  }
  const { index: _index, receipt: _receipt, ...report } = result;
  if (opts.json) {
    process.stdout.write(jsonText({ ...report, ...extra.json, emitted, trivyDbs: trivyDbReports(result.index.images, target.maxDbAge), ...(opts.receipt !== undefined && { receipt: opts.receipt }), ...(opts.report !== undefined && { report: evidence }) }));
    return;
  }
  const pushed = result.items.filter((i) => i.status === 'pushed').length;
  const lines = [
    ...result.items.map((i) => `${i.status.padEnd(7)} ${i.kind.padEnd(8)} ${i.target}`),
    result.upToDate
      ? `everything was already in place (${result.items.length} items); nothing pushed`
      : `${pushed} items pushed, ${result.items.length - pushed} already present; blobs: ${result.blobsPushed} uploaded (${formatBytes(result.bytesUploaded)}), ${result.blobsMounted} mounted, ${result.blobsPresent} present; ${result.filesWritten} files written`,
    ...(result.attached ? [attachedLine(result.attached)] : []),
    ...(result.signatures ? [`publisher signatures checked against the ${result.signatures.from === 'given' ? 'policy given with --policy' : 'policy the bundle carries'}:`, ...result.signatures.verdicts.map(verdictLine)] : []),
    ...(result.countersigned ?? []).map((c) => `countersigned ${c.status === 'pushed' ? '(new)' : '(already)'} ${c.target}  for ${c.ref}`),
    ...(extra.lines ?? []),
    ...(result.falcoIndex ? [`falco index: ${files.describe}/${result.falcoIndex}`] : []),
    ...emitted.map((f) => `wrote ${f}`),
    ...(opts.receipt !== undefined ? [`wrote receipt ${opts.receipt}`] : []),
    ...evidence.map((f) => `wrote ${f}`),
  ];
  process.stdout.write(lines.map(printable).join('\n') + '\n');
}

/** One line on the attached manifests: how many pushed, of which kinds, and what became of the fallback indexes. */
function attachedLine(a: AttachedStats): string {
  const plural: Record<string, string> = { signature: 'signatures', attestation: 'attestations', sbom: 'SBOMs', other: 'others' };
  const kinds = Object.entries(a.pushed).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${n === 1 ? (k === 'sbom' ? 'SBOM' : k) : plural[k]}`);
  const pushed = Object.values(a.pushed).reduce((x, y) => x + y, 0);
  const f = a.fallbackIndexes;
  const fallback = a.referrersFallback === 'never' ? 'fallback index: never (--referrers-fallback never)' : `fallback index: ${f.written} written, ${f.unchanged} up to date, ${f.notNeeded} not needed (referrers API)`;
  return `attached manifests: ${pushed} pushed${kinds.length ? ` (${kinds.join(', ')})` : ''}, ${a.present} already present; ${fallback}`;
}

/** Refuses, before anything is pushed, a --report folder that is a file (a missing one is made). */
async function checkReportDir(dir: string): Promise<void> {
  const d = await stat(dir).catch(() => undefined);
  if (d && !d.isDirectory()) throw usageError(`--report ${dir}: is not a folder; give a folder for report.html and sbom.cdx.json`);
}

/**
 * Blobs larger than this go up in PATCH chunks of this size (default: one PUT up
 * to 8 MiB, PATCH chunks of 64 MiB above);
 * set AIRLOCK_CHUNK_SIZE (bytes) lower for a proxy that limits request bodies.
 */
function uploadChunkSize(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const v = env.AIRLOCK_CHUNK_SIZE;
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v) || Number(v) < 1024) throw usageError(`AIRLOCK_CHUNK_SIZE=${v}: give a whole number of bytes, at least 1024`);
  return Number(v);
}
