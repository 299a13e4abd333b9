// Where unpack's steps read what they push: a bundle (BundleReader, every
// entry verified in one pass before the first push) or, for sync, the
// content store, filled from upstream only with what the target lacks
// (src/sync/source.ts). Entries are named as in the bundle: blobs/sha256/HEX
// and files/PATH.
import type { BundleReader } from '../bundle/reader.js';

export type UnpackSource = Pick<BundleReader, 'index' | 'bundleJson' | 'plan' | 'parts' | 'onPart' | 'verify' | 'verifyExcept' | 'toVerify' | 'scan' | 'readEntry' | 'has' | 'range'> & {
  /** Resolves once the entry's bytes are at hand and verified (sync: fetched into the cache); a bundle verified them before. */
  ready?(name: string): Promise<void>;
};
