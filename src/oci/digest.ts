// Digests: parse, compute, compare. Every byte airlock moves passes one of these.
import { createHash } from 'node:crypto';
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
