// Step 4 of prune (--apply): the deletions, in the plan's order (see ORDER in
// plan.ts), each logged in the prune receipt as soon as it is made. A 404 is
// "absent": what a killed run already deleted is skipped by the rerun.
import { StatusError } from '../http/errors.js';
import { sidecarPath } from '../manifest/paths.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import { RegistryError, type RegistryClient } from '../registry/client.js';
import type { FileTarget } from '../unpack/files-target.js';
import type { PrunePlan, PlannedManifest } from './plan.js';
import type { PruneLog } from './receipt.js';

/**
 * Harbor refuses to delete a manifest an index still lists (the index owns
 * it): such a child is tried again once its index is gone; by then Harbor has
 * usually deleted it with the index (404, absent).
 */
const LISTED_ELSEWHERE = [403, 409, 412];

export async function applyPlan(plan: PrunePlan, client: RegistryClient, files: FileTarget | undefined, log: PruneLog, onEach: (line: string) => void = () => {}): Promise<void> {
  const now = () => new Date().toISOString();
  for (const f of plan.fallbacks) {
    let result: 'rewritten' | 'deleted' | 'absent';
    if (f.action === 'rewrite') {
      await client.putManifest(f.repository, f.tag, f.bytes!, OCI_INDEX);
      result = 'rewritten';
    } else result = await client.deleteManifest(f.repository, f.digest);
    await log.add({ kind: 'fallback-index', repository: f.repository, tag: f.tag, digest: f.digest, result, dropped: f.dropped, at: now() });
    onEach(`${result.padEnd(9)} fallback index ${client.host}/${f.repository}:${f.tag}`);
  }
  const deleteOne = async (m: PlannedManifest) => {
    const result = await client.deleteManifest(m.repository, m.digest);
    await log.add({ kind: 'manifest', repository: m.repository, digest: m.digest, role: m.role, of: m.of, tags: m.tags, result, at: now() });
    onEach(`${result.padEnd(9)} ${m.role.padEnd(8)} ${client.host}/${m.repository}@${m.digest}`);
  };
  const deferred: PlannedManifest[] = [];
  for (const m of plan.manifests) {
    try {
      await deleteOne(m);
    } catch (err) {
      const status = err instanceof StatusError || err instanceof RegistryError ? err.status : undefined;
      if (m.role === 'image' || status === undefined || !LISTED_ELSEWHERE.includes(status)) throw err;
      deferred.push(m);
    }
  }
  for (const m of deferred) await deleteOne(m);
  for (const f of plan.files) {
    // The checksum before its file: a .sha256 never vouches for a file that is gone.
    const sidecar = f.sidecar ? await files!.remove(sidecarPath(f.path)) : 'absent';
    const file = f.file ? await files!.remove(f.path) : 'absent';
    await log.add({ kind: 'file', path: f.path, sha256: f.sha256, file, sidecar, at: now() });
    const result = file === 'deleted' || sidecar === 'deleted' ? 'deleted' : 'absent';
    onEach(`${result.padEnd(9)} file     ${files!.describe}/${f.path}${f.sidecar ? ' (and .sha256)' : ''}`);
  }
}
