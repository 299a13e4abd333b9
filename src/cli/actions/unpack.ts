import type { UnpackFlags } from '../unpack.js';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import { DirTarget, UrlTarget, type FileTarget } from '../../unpack/files-target.js';
import { BundleError } from '../../bundle/reader.js';
import { parseTargetRegistry, TargetConflictError, type Layout } from '../../bundle/targets.js';
import { unpack, type UnpackResult } from '../../unpack/unpack.js';
import { emitConfig } from '../../emit/write.js';
import { writeReceipt } from '../../delta/receipt.js';
import { createProgress, formatBytes } from '../../progress/reporter.js';
import { schemeFor, type HostSettings } from '../../http/agent.js';
import { Http } from '../../http/client.js';
import { dockerConfigCredentials, firstOf, flagCredentials } from '../../http/credentials.js';
import { KeyError, loadPublicKey } from '../../sign/keys.js';
import { CliError, failure, usageError } from '../errors.js';
import { minRate, parseConcurrency, parseMaxDbAge, readCredentials, stallTimeoutMs } from '../options.js';
import { trivyDbReports } from '../../bundle/trivydb.js';
import { printable } from '../../util/printable.js';
import { jsonText } from '../json.js';
import { TOOL } from '../version.js';

export async function unpackAction(bundle: string, opts: UnpackFlags): Promise<void> {
  if (!opts.pub) throw usageError('give the public key with --pub PUB');
  if (!opts.registry) throw usageError('give the private registry with --registry HOST[:PORT][/PREFIX]');
  if (!opts.filesDir === !opts.filesUrl) throw usageError('give exactly one of --files-dir DIR and --files-url URL');
  if (opts.layout !== 'flat' && opts.layout !== 'host') throw usageError(`--layout ${opts.layout}: write flat or host`);
  if (opts.plainHttp && (opts.insecure || opts.caFile)) throw usageError('--plain-http contradicts --insecure/--ca-file (those mean HTTPS)');
  let registry;
  try {
    registry = parseTargetRegistry(opts.registry);
  } catch (err) {
    throw usageError((err as Error).message);
  }
  if (opts.caFile) await access(opts.caFile).catch(() => Promise.reject(usageError(`--ca-file ${opts.caFile}: no such file`)));
  for (const [flag, url] of [['--files-url', opts.filesUrl], ['--fileserver-url', opts.fileserverUrl]] as const) {
    if (url !== undefined && !/^https?:\/\/[^/]/.test(url)) throw usageError(`${flag} ${url}: write an http:// or https:// URL`);
  }
  if (opts.receipt !== undefined) await checkReceiptPath(opts.receipt);
  if (opts.filesDir) await access(opts.filesDir).catch(() => Promise.reject(usageError(`--files-dir ${opts.filesDir}: no such folder; create it first`)));
  const concurrency = parseConcurrency(opts.concurrency, 8);
  const maxDbAge = parseMaxDbAge(opts.maxDbAge);
  const credentials = await readCredentials(opts.username, opts.passwordStdin);
  const pub = await loadPublicKey(opts.pub).catch((e: Error) => Promise.reject(failure(e.message)));

  const settings: HostSettings = {
    ...(opts.plainHttp && { plainHttp: true }),
    ...(opts.insecure && { insecure: true }),
    ...(opts.caFile && { caFile: opts.caFile }),
  };
  const stall = stallTimeoutMs();
  const rate = minRate();
  const progress = createProgress('airlock unpack');
  const warn = (m: string) => progress.log(m);
  const window = stall ?? 60_000;
  const http = new Http({
    connections: concurrency,
    ...(stall !== undefined && { bodyTimeoutMs: stall, headersTimeoutMs: stall }),
    rateWindowMs: window,
    minBytesPerWindow: Math.round(((rate ?? 1024) * window) / 1000),
    settings: (h) => (h === registry.host ? settings : {}),
    userAgent: TOOL.replace(' ', '/'),
    // The flags are for the --registry host only; docker config.json is scoped per host by itself.
    credentials: firstOf(flagCredentials(credentials, [registry.host]), dockerConfigCredentials({ warn })),
    warn,
  });
  const files: FileTarget = opts.filesDir ? new DirTarget(opts.filesDir) : new UrlTarget(opts.filesUrl ?? '', http);
  let result: UnpackResult;
  try {
    const chunkSize = uploadChunkSize();
    result = await unpack({ bundle, pub, registry, layout: opts.layout as Layout, files, http, concurrency, progress, ...(chunkSize && { chunkSize }), ...(maxDbAge && { maxDbAge }), createProjects: opts.createProjects === true, receipt: opts.receipt !== undefined });
  } catch (err) {
    if (err instanceof TargetConflictError) throw new CliError(err.message, 2);
    if (err instanceof BundleError || err instanceof KeyError) throw failure(`${bundle}: ${err.message}`);
    throw err;
  } finally {
    progress.finish();
    await http.close();
  }
  const scheme = schemeFor(registry.host, settings);
  const fileserverUrl = (opts.fileserverUrl ?? opts.filesUrl)?.replace(/\/+$/, '');
  let emitted: string[] = [];
  if (opts.emitConfig) {
    emitted = await emitConfig(opts.emitConfig, {
      index: result.index,
      registry,
      layout: opts.layout as Layout,
      registryScheme: scheme,
      registryInsecure: scheme === 'http' || opts.insecure === true,
      ...(opts.caFile && { caFile: opts.caFile }),
      ...(fileserverUrl && { fileserverUrl }),
    });
    if (!fileserverUrl) progress.log('note: no --fileserver-url (or --files-url): the config has no file server URLs (OpenSearch plugins, Falco index and drivers)');
  }
  // Last, once everything else succeeded: a receipt claims the target holds all of it.
  if (opts.receipt !== undefined && result.receipt) {
    const file = opts.receipt;
    await writeReceipt(file, result.receipt).catch((err: Error) => Promise.reject(failure(`--receipt ${file}: ${err.message}`)));
  }
  const { index: _index, receipt: _receipt, ...report } = result;
  if (opts.json) {
    process.stdout.write(jsonText({ ...report, emitted, trivyDbs: trivyDbReports(result.index.images, maxDbAge), ...(opts.receipt !== undefined && { receipt: opts.receipt }) }));
    return;
  }
  const pushed = result.items.filter((i) => i.status === 'pushed').length;
  const lines = [
    ...result.items.map((i) => `${i.status.padEnd(7)} ${i.kind.padEnd(8)} ${i.target}`),
    result.upToDate
      ? `everything was already in place (${result.items.length} items); nothing pushed`
      : `${pushed} items pushed, ${result.items.length - pushed} already present; blobs: ${result.blobsPushed} uploaded (${formatBytes(result.bytesUploaded)}), ${result.blobsMounted} mounted, ${result.blobsPresent} present; ${result.filesWritten} files written`,
    ...(result.falcoIndex ? [`falco index: ${files.describe}/${result.falcoIndex}`] : []),
    ...emitted.map((f) => `wrote ${f}`),
    ...(opts.receipt !== undefined ? [`wrote receipt ${opts.receipt}`] : []),
  ];
  process.stdout.write(lines.map(printable).join('\n') + '\n');
}

/** Refuses, before anything is pushed, a receipt path whose folder is missing or that names a folder. */
async function checkReceiptPath(file: string): Promise<void> {
  const dir = path.dirname(file);
  const d = await stat(dir).catch(() => undefined);
  if (!d?.isDirectory()) throw usageError(`--receipt ${file}: no such folder ${dir}; create it first`);
  const f = await stat(file).catch(() => undefined);
  if (f?.isDirectory()) throw usageError(`--receipt ${file}: is a folder; give a file name`);
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
