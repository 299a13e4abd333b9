// Digests: parse, compute, compare. Every byte airlock moves passes one of these.
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { digestProblem } from './reference.js';

export type Algorithm = 'sha256' | 'sha512';

export function sha256Hex(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${sha256Hex(data)}`;
}

/** Splits `sha256:<hex>`; throws when the digest is malformed. */
export function splitDigest(digest: string): { algorithm: Algorithm; hex: string } {
  const problem = digestProblem(digest);
  if (problem) throw new Error(`invalid digest "${digest}": ${problem}`);
  const [algorithm, hex] = digest.split(':') as [Algorithm, string];
  return { algorithm, hex };
}

/** A pass-through that hashes what flows by with one or more algorithms and counts bytes. */
export class HashingStream extends Transform {
  private readonly hashes: Map<Algorithm, Hash>;
  bytes = 0;

  constructor(
    algorithms: readonly Algorithm[] = ['sha256'],
    seed?: Map<Algorithm, Hash>,
    private readonly onChunk?: (bytes: number) => void,
  ) {
    super();
    this.hashes = seed ?? new Map(algorithms.map((a) => [a, createHash(a)]));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    for (const h of this.hashes.values()) h.update(chunk);
    this.bytes += chunk.length;
    this.onChunk?.(chunk.length);
    cb(null, chunk);
  }

  hex(algorithm: Algorithm): string {
    const h = this.hashes.get(algorithm);
    if (!h) throw new Error(`not hashing ${algorithm}`);
    return h.copy().digest('hex');
  }
}
