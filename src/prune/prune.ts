// `airlock prune` (SPEC §11) as short named steps: load the receipts, plan,
// check the registry deletes, delete (with --apply), each deletion logged in
// the prune receipt. Blobs are left to the registry's garbage collection.
import type { TargetRegistry } from '../bundle/targets.js';
import type { Http } from '../http/client.js';
import { RegistryClient } from '../registry/client.js';
import type { FileTarget } from '../unpack/files-target.js';
import { applyPlan } from './apply.js';
import { deletesRefused, DeletesRefusedError } from './check.js';
import { loadReceipts } from './load.js';
import { makePlan, type PrunePlan } from './plan.js';
import { defaultReceiptPath, PRUNE_RECEIPT_KIND, PruneLog, receiptRef, type Deletion } from './receipt.js';
import { RECEIPT_API_VERSION } from '../delta/receipt.js';

export interface PruneOptions {
  readonly registry: TargetRegistry;
  readonly from: readonly string[];
  readonly keep: readonly string[];
  readonly http: Http;
  readonly files?: FileTarget;
  readonly apply: boolean;
  /** --receipt: where the prune receipt goes (default beside the first --from receipt). */
  readonly receipt?: string;
  readonly concurrency: number;
  /** One line per deletion as it is made. */
  readonly log?: (line: string) => void;
}

export interface PruneResult {
  readonly plan: PrunePlan;
  readonly applied: boolean;
  /** Why the registry would refuse the deletes; undefined when it takes them or none are planned. */
  readonly refused?: string;
  readonly deletions: readonly Deletion[];
  /** The prune receipt written (--apply only). */
  readonly receipt?: string;
}

export async function prune(o: PruneOptions): Promise<PruneResult> {
  const host = o.registry.host;
  const started = new Date();
  const from = await loadReceipts(o.from, host, '--from');
  const keep = await loadReceipts(o.keep, host, '--keep');
  const client = new RegistryClient(host, o.http);
  const plan = await makePlan({ from, keep, client, concurrency: o.concurrency, ...(o.files && { files: o.files }) });
  const probeRepo = plan.fallbacks[0]?.repository ?? plan.manifests[0]?.repository;
  const refused = probeRepo === undefined ? undefined : await deletesRefused(client, probeRepo);
  if (!o.apply) return { plan, applied: false, deletions: [], ...(refused && { refused }) };
  if (refused) throw new DeletesRefusedError(refused);
  const log = new PruneLog(o.receipt ?? defaultReceiptPath(o.from[0]!, started), {
    apiVersion: RECEIPT_API_VERSION,
    kind: PRUNE_RECEIPT_KIND,
    registry: host,
    ...(o.files && { files: o.files.describe }),
    started: started.toISOString(),
    finished: null,
    from: from.map(receiptRef),
    keep: keep.map(receiptRef),
    deletions: [],
    left: [...plan.left],
  });
  await log.write();
  await applyPlan(plan, client, o.files, log, o.log);
  await log.finish();
  return { plan, applied: true, deletions: log.receipt.deletions, receipt: log.file };
}
