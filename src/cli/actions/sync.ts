// `airlock sync`: the manifest and the target flags checked, then build's and unpack's steps with no bundle.
import { createHttp, hostSettings } from '../../build/fetch.js';
import { TargetConflictError } from '../../bundle/targets.js';
import { defaultCacheDir } from '../../cache/store.js';
import { dockerConfigCredentials, firstOf, flagCredentials } from '../../http/credentials.js';
import { loadManifest } from '../../manifest/load.js';
import { parseSetArgs } from '../../manifest/vars.js';
import { createProgress, formatBytes } from '../../progress/reporter.js';
import { sync, type SyncResult } from '../../sync/sync.js';
import { DirTarget, UrlTarget, type FileTarget } from '../../unpack/files-target.js';
import { CliError, usageError } from '../errors.js';
import { minRate, parsePlatformList, sourceDateEpoch, stallTimeoutMs } from '../options.js';
import type { SyncFlags } from '../sync.js';
import { finishTarget, parseTarget } from './target.js';
import { TOOL } from '../version.js';

export async function syncAction(manifest: string, opts: SyncFlags): Promise<void> {
  let set: Record<string, string>;
  try {
    set = parseSetArgs(opts.set);
  } catch (err) {
    throw usageError((err as Error).message);
  }
  const platforms = parsePlatformList(opts.platform);
  const epoch = sourceDateEpoch();
  const stall = stallTimeoutMs();
  const rate = minRate();
  const target = await parseTarget(opts);
  const { registry, concurrency } = target;
  // Everything is checked before the first download.
  const plan = await loadManifest(manifest, { set });

  const progress = createProgress('airlock sync');
  const warn = (m: string) => progress.log(m);
  for (const w of plan.warnings ?? []) warn(`warning: ${w}`);
  // --username/--password-stdin are for the --registry host only; upstream hosts (and the target too, without them) use docker config.json.
  const credentials = firstOf(flagCredentials(target.credentials, [registry.host]), dockerConfigCredentials({ warn }));
  const settings = (h: string) => (h === registry.host ? target.settings : hostSettings(plan, h));
  const http = createHttp({ concurrency, tool: TOOL, credentials, warn, ...(stall !== undefined && { bodyTimeoutMs: stall }), ...(rate !== undefined && { minBytesPerSecond: rate }) }, settings);
  const files: FileTarget = opts.filesDir ? new DirTarget(opts.filesDir) : new UrlTarget(opts.filesUrl ?? '', http);
  let result: SyncResult;
  try {
    const { chunkSize, maxDbAge } = target;
    result = await sync({
      plan,
      bundle: manifest,
      cacheDir: opts.cache ?? defaultCacheDir(),
      ...(platforms && { platforms }),
      tool: TOOL,
      ...(epoch !== undefined && { sourceDateEpoch: epoch }),
      registry,
      layout: target.layout,
      files,
      http,
      concurrency,
      progress,
      ...(chunkSize && { chunkSize }),
      ...(maxDbAge && { maxDbAge }),
      createProjects: opts.createProjects === true,
      // --report draws on the receipt of what was put inside.
      receipt: opts.receipt !== undefined || opts.report !== undefined,
      referrersFallback: target.referrersFallback, signatures: target.signatures,
      ...(opts.attached === false && { attached: false }),
    });
  } catch (err) {
    if (err instanceof TargetConflictError) throw new CliError(err.message, 2);
    throw err;
  } finally {
    progress.finish();
    await http.close();
  }
  const f = result.fetched;
  await finishTarget(result, target, opts, files, progress, { via: 'sync', report: { source: manifest }, lines: [`fetched from upstream: ${f.blobs} blobs and ${f.files} files (${formatBytes(f.bytes)})`] });
}
