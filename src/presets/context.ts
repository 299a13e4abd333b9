// What a preset needs from the loader: a way to say where an item came from
// and to report a problem at a key path.
import type { Item, Origin } from '../manifest/types.js';
import type { PathSegment } from '../manifest/problems.js';

export interface PresetContext {
  origin(path: PathSegment[]): Origin;
  problem(path: PathSegment[], message: string): void;
  /** Something that works but should not be chosen. */
  warn(path: PathSegment[], message: string): void;
  /** Parses an OCI reference, reporting a problem at `path` when it is invalid. */
  artifact(ref: string, path: PathSegment[], role: NonNullable<Extract<Item, { kind: 'artifact' }>['role']>): void;
  file(item: Omit<Extract<Item, { kind: 'file' }>, 'kind' | 'origins'>, path: PathSegment[]): void;
}

/** http(s) URL check shared by presets; returns the URL without a trailing slash. */
/** Why `value` is not an http(s) URL, or undefined when it is one. */
export function httpUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return `"${value}" is not a URL; write an http:// or https:// URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `"${value}" uses ${url.protocol}; write an http:// or https:// URL`;
  return undefined;
}

export function baseUrl(ctx: PresetContext, value: string, path: PathSegment[]): string | undefined {
  const problem = httpUrlProblem(value);
  if (problem) {
    ctx.problem(path, problem);
    return undefined;
  }
  return value.replace(/\/+$/, '');
}
