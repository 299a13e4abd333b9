// `airlock prune`: the flags checked, the plan (and with --apply the
// deletions) made, the report: what goes, what stays and why, and how to run
// the registry's garbage collection afterwards.
import { createHttp } from '../../build/fetch.js';
import { dockerConfigCredentials, firstOf, flagCredentials } from '../../http/credentials.js';
import { AttachedError } from '../../oci/attached.js';
import { GraphError } from '../../oci/graph.js';
import { createProgress, formatBytes } from '../../progress/reporter.js';
import { PruneUsageError } from '../../prune/load.js';
import { prune, type PruneResult } from '../../prune/prune.js';
import { DirTarget, UrlTarget, type FileTarget } from '../../unpack/files-target.js';
import { printable } from '../../util/printable.js';
import { CliError, failure, usageError } from '../errors.js';
import { jsonText } from '../json.js';
import { parseConcurrency, readCredentials } from '../options.js';
import type { PruneFlags } from '../prune.js';
import { TOOL } from '../version.js';
import { checkFilesDir, checkFileUrls, checkReceiptPath, parseRegistryFlags } from './target.js';

/** What to run once manifests are deleted: blobs go only with the registry's garbage collection. */
export const GARBAGE_COLLECTION = {
  distribution:
    'stop the registry (or set storage.maintenance.readonly.enabled: true and restart it), run `registry garbage-collect /etc/docker/registry/config.yml` (docker-registry on Debian: `docker-registry garbage-collect /etc/docker/registry/config.yml`), then start it again (read-write). Add --delete-untagged only if no signature or attestation was pushed by digest (referrers): it deletes every untagged manifest, referrers included (distribution#3178).',
  harbor:
    'Administration > Clean Up > Garbage Collection (GC Now, or a schedule; POST /api/v2.0/system/gc/schedule) frees the blobs no artifact uses; Harbor 2.1 and later keep pushes open while it runs. Leave "Allow garbage collection on untagged artifacts" off unless every untagged artifact may go: it deletes them whoever pushed them.',
};

export async function pruneAction(opts: PruneFlags): Promise<void> {
  if (!opts.registry) throw usageError('give the private registry with --registry HOST[:PORT][/PREFIX]');
  if (!opts.from?.length) throw usageError('give the receipts of the releases to remove with --from RECEIPT…');
  if (!opts.keep?.length) throw usageError('give the receipts of the releases to keep with --keep RECEIPT… (the rollback window); nothing they list is touched');
  if (opts.filesDir && opts.filesUrl) throw usageError('give at most one of --files-dir DIR and --files-url URL');
  if (opts.receipt !== undefined && !opts.apply) throw usageError('--receipt is written by --apply; a dry run deletes nothing and writes no receipt');
  const { registry, settings } = await parseRegistryFlags({ ...opts, registry: opts.registry });
  checkFileUrls(opts);
  await checkFilesDir(opts.filesDir);
  if (opts.receipt !== undefined) await checkReceiptPath(opts.receipt);
  const concurrency = parseConcurrency(opts.concurrency, 8);
  const given = await readCredentials(opts.username, opts.passwordStdin);

  const progress = createProgress('airlock prune');
  const warn = (m: string) => progress.log(m);
  const credentials = firstOf(flagCredentials(given, [registry.host]), dockerConfigCredentials({ warn }));
  const http = createHttp({ concurrency, tool: TOOL, credentials, warn }, (h) => (h === registry.host ? settings : {}));
  const files: FileTarget | undefined = opts.filesDir ? new DirTarget(opts.filesDir) : opts.filesUrl ? new UrlTarget(opts.filesUrl, http) : undefined;
  let result: PruneResult;
  try {
    result = await prune({ registry, from: opts.from, keep: opts.keep, http, apply: opts.apply === true, concurrency, log: warn, ...(files && { files }), ...(opts.receipt !== undefined && { receipt: opts.receipt }) });
  } catch (err) {
    if (err instanceof PruneUsageError) throw new CliError(err.message, 2);
    if (err instanceof GraphError || err instanceof AttachedError) throw failure(err.message);
    throw err;
  } finally {
    progress.finish();
    await http.close();
  }
  const { plan } = result;
  if (opts.json) {
    // A rewritten fallback index's bytes are for the PUT, not for people.
    const fallbacks = plan.fallbacks.map(({ bytes: _bytes, ...f }) => f);
    process.stdout.write(jsonText({ registry: registry.host, dryRun: !result.applied, ...(result.refused && { refused: result.refused }), plan: { ...plan, fallbacks }, deletions: result.deletions, ...(result.receipt && { receipt: result.receipt }), garbageCollection: GARBAGE_COLLECTION }));
    return;
  }
  const host = registry.host;
  const lines: string[] = [];
  if (!result.applied) {
    lines.push('dry run: nothing deleted; with --apply prune deletes:');
    for (const f of plan.fallbacks) lines.push(`${f.action.padEnd(8)} fallback index ${host}/${f.repository}:${f.tag} (${f.dropped.length} of its entries dropped)`);
    for (const m of plan.manifests) lines.push(`delete   ${m.role.padEnd(8)} ${host}/${m.repository}@${m.digest} ${m.of}${m.tags.length ? ` (tags ${m.tags.join(', ')})` : ''}${m.bytes ? `, ${formatBytes(m.bytes)}` : ''}`);
    for (const f of plan.files) lines.push(`delete   file     ${files!.describe}/${f.path}${f.sidecar ? ' and its .sha256' : ''}${f.file ? `, ${formatBytes(f.size)}` : ''}`);
    if (result.refused) lines.push(`warning: ${result.refused}`);
  } else {
    for (const d of result.deletions) {
      if (d.kind === 'fallback-index') lines.push(`${d.result.padEnd(9)} fallback index ${host}/${d.repository}:${d.tag}`);
      else if (d.kind === 'manifest') lines.push(`${d.result.padEnd(9)} ${d.role.padEnd(8)} ${host}/${d.repository}@${d.digest} ${d.of}${d.tags.length ? ` (tags ${d.tags.join(', ')})` : ''}`);
      else lines.push(`${(d.file === 'deleted' || d.sidecar === 'deleted' ? 'deleted' : 'absent').padEnd(9)} file     ${files!.describe}/${d.path}`);
    }
  }
  for (const l of plan.left) lines.push(`left     ${l.what}: ${l.why}`);
  for (const g of plan.gone) lines.push(`gone     ${g} (already)`);
  const images = plan.manifests.filter((m) => m.role === 'image').length;
  lines.push(
    `${result.applied ? 'deleted' : 'to delete'}: ${plan.manifests.length} manifests (${images} images), ${plan.fallbacks.length} fallback indexes, ${plan.files.length} files; the blobs only they list hold ${formatBytes(plan.bytes)}`,
  );
  if (result.receipt) lines.push(`wrote prune receipt ${result.receipt}`);
  if (plan.manifests.length) {
    lines.push('blobs stay until the registry collects its garbage:', `  distribution: ${GARBAGE_COLLECTION.distribution}`, `  Harbor: ${GARBAGE_COLLECTION.harbor}`);
  }
  process.stdout.write(lines.map(printable).join('\n') + '\n');
}
