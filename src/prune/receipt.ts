// The prune receipt: every deletion prune made, written again (whole,
// atomically) after each one, so a run killed half-way leaves a true record of
// what it did (`finished` stays null) and the rerun writes its own.
import path from 'node:path';
import { writeAtomic } from '../fsx/atomic.js';
import { RECEIPT_API_VERSION } from '../delta/receipt.js';
import type { LoadedReceipt } from './load.js';
import type { LeftAlone, PlannedManifest } from './plan.js';

export const PRUNE_RECEIPT_KIND = 'PruneReceipt';

export interface ReceiptRef {
  readonly file: string;
  /** Hex sha256 of the receipt file. */
  readonly sha256: string;
  readonly bundle: { readonly name: string; readonly version: string };
}

export type Deletion =
  | ({ kind: 'manifest'; result: 'deleted' | 'absent'; at: string } & Pick<PlannedManifest, 'repository' | 'digest' | 'role' | 'of' | 'tags'>)
  | { kind: 'fallback-index'; repository: string; tag: string; digest: string; result: 'rewritten' | 'deleted' | 'absent'; dropped: readonly string[]; at: string }
  | { kind: 'file'; path: string; sha256: string; file: 'deleted' | 'absent'; sidecar: 'deleted' | 'absent'; at: string };

export interface PruneReceipt {
  apiVersion: typeof RECEIPT_API_VERSION;
  kind: typeof PRUNE_RECEIPT_KIND;
  /** The registry host. */
  registry: string;
  /** The folder or URL files were deleted from, when given. */
  files?: string;
  started: string;
  /** When every planned deletion was done; null while running (a run that was killed). */
  finished: string | null;
  from: ReceiptRef[];
  keep: ReceiptRef[];
  /** In the order they were made. */
  deletions: Deletion[];
  /** What the --from receipts list that was left in place, and why. */
  left: LeftAlone[];
}

export const receiptRef = (r: LoadedReceipt): ReceiptRef => ({ file: r.file, sha256: r.sha256, bundle: { name: r.receipt.bundle.name, version: r.receipt.bundle.version } });

/** Where the prune receipt goes without --receipt: beside the first --from receipt, named for the time the run started. */
export function defaultReceiptPath(firstFrom: string, started: Date): string {
  return path.join(path.dirname(firstFrom), `prune-${started.toISOString().replace(/[:.]/g, '').replace(/\d{3}Z$/, 'Z')}.json`);
}

/** The receipt kept up to date on disk as deletions are made. */
export class PruneLog {
  constructor(
    readonly file: string,
    readonly receipt: PruneReceipt,
  ) {}

  async add(d: Deletion): Promise<void> {
    this.receipt.deletions.push(d);
    await this.write();
  }

  async finish(): Promise<void> {
    this.receipt.finished = new Date().toISOString();
    await this.write();
  }

  write(): Promise<void> {
    return writeAtomic(this.file, JSON.stringify(this.receipt, null, 2) + '\n');
  }
}
