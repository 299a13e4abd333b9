// Step 1 of prune (SPEC §11): the --from and --keep receipts, read as hostile
// input (src/delta/receipt.ts), each checked to be about the registry pruned,
// and what each lists put in the terms prune works in: a repository and a
// digest per manifest, the tag it was pushed by.
import { createHash } from 'node:crypto';
import { parseTargetRegistry } from '../bundle/targets.js';
import { readReceipt, type Receipt, type ReceiptAttached } from '../delta/receipt.js';
import { printable } from '../util/printable.js';

export class PruneUsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'PruneUsageError';
  }
}

/** An image a receipt lists, where it was pushed. */
export interface ListedImage {
  /** The receipt file, for messages. */
  readonly receipt: string;
  readonly ref: string;
  readonly digest: string;
  readonly repository: string;
  /** The tag it was pushed by; absent when pushed by digest. */
  readonly tag?: string;
  /** `HOST/REPO:TAG` or `HOST/REPO@DIGEST`. */
  readonly target: string;
}

export interface LoadedReceipt {
  readonly file: string;
  readonly receipt: Receipt;
  /** Hex sha256 of the receipt file's bytes. */
  readonly sha256: string;
  readonly images: readonly ListedImage[];
  readonly attached: readonly ReceiptAttached[];
  /** Blob digest → size, every blob it lists (manifests included). */
  readonly sizes: ReadonlyMap<string, number>;
}

/** Reads every receipt; refuses (exit 2) one written for another registry host: its repositories would name other things here. */
export async function loadReceipts(files: readonly string[], host: string, flag: '--from' | '--keep'): Promise<LoadedReceipt[]> {
  const out: LoadedReceipt[] = [];
  for (const file of files) {
    const { receipt, bytes } = await readReceipt(file);
    const at = parseTargetRegistry(receipt.registry).host;
    if (at !== host) throw new PruneUsageError(`${flag} ${printable(file)}: the receipt is for registry ${printable(at)}, not ${printable(host)}; give the receipts of what was unpacked into --registry`);
    out.push({
      file,
      receipt,
      sha256: createHash('sha256').update(bytes).digest('hex'),
      images: receipt.images.map((img) => listedImage(file, host, img)),
      attached: receipt.attached ?? [],
      sizes: new Map(receipt.blobs.map((b) => [b.digest, b.size])),
    });
  }
  return out;
}

/** A receipt's target (checked by checkReceipt to be where its layout puts the ref) split into repository and tag. */
function listedImage(receipt: string, host: string, img: Receipt['images'][number]): ListedImage {
  const rest = img.target.slice(host.length + 1);
  const at = rest.search(/[:@]/);
  const repository = rest.slice(0, at);
  const tag = rest[at] === ':' ? rest.slice(at + 1) : undefined;
  return { receipt, ref: img.ref, digest: img.digest, repository, target: img.target, ...(tag !== undefined && { tag }) };
}
