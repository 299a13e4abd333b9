// Files the target holds already are not downloaded: for a file whose
// manifest gives its sha256, the upstream size (HEAD) and that sha256 are
// checked at the file target. Build's resolveFiles then treats them as it
// treats files a delta's base holds. A file known only by sha512 or pinned
// at first download cannot be matched against the target's sha256 sidecar
// without its bytes, so it goes through the cache.
import type { ContentStore } from '../cache/store.js';
import { headSize } from '../fetch/files.js';
import type { Http } from '../http/client.js';
import type { FileItem, Plan } from '../manifest/types.js';
import type { FileTarget } from '../unpack/files-target.js';

type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

/** `path\0sha256` → size of every file the target holds with the sha256 the manifest declares (and the cache lacks). */
export async function heldByTarget(plan: Plan, store: ContentStore, http: Http, target: FileTarget, limit: Limit): Promise<Map<string, number>> {
  const held = new Map<string, number>();
  const declared = plan.items.filter((i): i is FileItem => i.kind === 'file' && i.checksum.type === 'digest' && i.checksum.algorithm === 'sha256');
  await Promise.all(
    declared.map((item) =>
      limit(async () => {
        if (item.checksum.type !== 'digest') return;
        const hex = item.checksum.hex;
        if (await store.has(`sha256:${hex}`)) return;
        // Any failure here only means "download it": the download reports it properly.
        const size = await headSize(http, item.url).catch(() => undefined);
        if (size !== undefined && (await target.has(item.path, hex, size).catch(() => false))) held.set(`${item.path}\0${hex}`, size);
      }),
    ),
  );
  return held;
}
