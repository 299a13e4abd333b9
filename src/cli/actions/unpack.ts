// `airlock unpack`: the flags checked, the bundle unpacked into the target, the report.
import { DirTarget, UrlTarget, type FileTarget } from '../../unpack/files-target.js';
import { BundleError } from '../../bundle/reader.js';
import { TargetConflictError } from '../../bundle/targets.js';
import { unpack, type UnpackResult } from '../../unpack/unpack.js';
import { createProgress } from '../../progress/reporter.js';
import { Http } from '../../http/client.js';
import { dockerConfigCredentials, firstOf, flagCredentials } from '../../http/credentials.js';
import { KeyError, loadPrivateKey, loadPublicKey } from '../../sign/keys.js';
import { CliError, failure, usageError } from '../errors.js';
import { minRate, parseJobs, stallTimeoutMs } from '../options.js';
import type { UnpackFlags } from '../unpack.js';
import { TOOL } from '../version.js';
import { finishTarget, parseTarget } from './target.js';

export async function unpackAction(bundle: string, opts: UnpackFlags): Promise<void> {
  if (!opts.pub) throw usageError('give the public key with --pub PUB');
  const jobs = parseJobs(opts.jobs);
  const target = await parseTarget(opts);
  const { registry, settings, concurrency } = target;
  const pub = await loadPublicKey(opts.pub).catch((e: Error) => Promise.reject(failure(e.message)));
  const countersignKey = opts.countersign !== undefined ? await loadPrivateKey(opts.countersign).catch((e: Error) => Promise.reject(failure(`--countersign ${opts.countersign}: ${e.message}`))) : undefined;

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
    credentials: firstOf(flagCredentials(target.credentials, [registry.host]), dockerConfigCredentials({ warn })),
    warn,
  });
  const files: FileTarget = opts.filesDir ? new DirTarget(opts.filesDir) : new UrlTarget(opts.filesUrl ?? '', http);
  let result: UnpackResult;
  try {
    const { chunkSize, maxDbAge } = target;
    result = await unpack({ bundle, pub, ...(jobs !== undefined && { jobs }), registry, layout: target.layout, files, http, concurrency, progress, ...(chunkSize && { chunkSize }), ...(maxDbAge && { maxDbAge }), createProjects: opts.createProjects === true, receipt: opts.receipt !== undefined || opts.report !== undefined, referrersFallback: target.referrersFallback, signatures: target.signatures, ...(countersignKey && { countersign: countersignKey }) });
  } catch (err) {
    if (err instanceof TargetConflictError) throw new CliError(err.message, 2);
    if (err instanceof BundleError || err instanceof KeyError) throw failure(`${bundle}: ${err.message}`);
    throw err;
  } finally {
    progress.finish();
    await http.close();
  }
  await finishTarget(result, target, opts, files, progress, { report: { source: bundle, verifiedBy: pub } });
}
