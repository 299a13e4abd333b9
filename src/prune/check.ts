// Step 3 of prune: before anything is deleted, whether the registry deletes
// at all. distribution refuses every manifest DELETE with 405 UNSUPPORTED
// unless storage.delete.enabled is true, checked before it looks the manifest
// up; with deletes on, a digest it cannot hold answers 404. So a DELETE of a
// digest nobody can have pushed (the sha256 of a sentence, not JSON) tells the
// two apart without removing anything. Harbor answers 404 for it too, or
// 401/403 when the account may not delete.
import { createHash } from 'node:crypto';
import { StatusError } from '../http/errors.js';
import { RegistryError, type RegistryClient } from '../registry/client.js';

/** A digest no manifest can have: the sha256 of this text. */
export const PROBE_DIGEST = `sha256:${createHash('sha256').update('airlock prune: a digest no manifest has').digest('hex')}`;

export class DeletesRefusedError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'DeletesRefusedError';
  }
}

/** Undefined when `repo` at the registry takes deletes; else why not, naming the setting to change. */
export async function deletesRefused(client: RegistryClient, repo: string): Promise<string | undefined> {
  try {
    await client.deleteManifest(repo, PROBE_DIGEST);
    return undefined;
  } catch (err) {
    const status = err instanceof StatusError || err instanceof RegistryError ? err.status : undefined;
    const code = err instanceof StatusError ? err.ociCode : err instanceof RegistryError ? err.code : undefined;
    if (status === 405) {
      return `${client.host} refuses to delete manifests (HTTP 405${code ? ` ${code}` : ''}): on distribution (registry:2, docker-registry) set storage.delete.enabled: true in its config.yml (or REGISTRY_STORAGE_DELETE_ENABLED=true) and restart it; nothing was deleted`;
    }
    if (status === 401 || status === 403) {
      return `${client.host} does not let this account delete in ${repo} (HTTP ${status}): on Harbor the user or robot account needs the delete permission on the project (robot: "Delete artifact"); nothing was deleted`;
    }
    throw err;
  }
}
