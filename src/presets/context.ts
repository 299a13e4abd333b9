// What a preset needs from the loader: a way to say where an item came from
// and to report a problem at a key path.
import type { Item, Origin } from '../manifest/types.js';
import type { PathSegment } from '../manifest/problems.js';
import { httpUrlProblem } from '../util/url.js';

export interface PresetContext {
  origin(path: PathSegment[]): Origin;
  problem(path: PathSegment[], message: string): void;
  /** Something that works but should not be chosen. */
  warn(path: PathSegment[], message: string): void;
  /** Parses an OCI reference, reporting a problem at `path` when it is invalid. */
  artifact(ref: string, path: PathSegment[], role: NonNullable<Extract<Item, { kind: 'artifact' }>['role']>): void;
  file(item: Omit<Extract<Item, { kind: 'file' }>, 'kind' | 'origins'>, path: PathSegment[]): void;
}

/** A preset's base URL without a trailing slash, or undefined after reporting why it is not one. */
export function baseUrl(ctx: PresetContext, value: string, path: PathSegment[]): string | undefined {
  const problem = httpUrlProblem(value);
  if (problem) {
    ctx.problem(path, problem);
    return undefined;
  }
  return value.replace(/\/+$/, '');
}
