// Manifest problems are collected, never thrown one by one: a person fixing a
// manifest wants every mistake in one run.

export interface Problem {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Key path, e.g. `spec.files[2].sha256`; empty for the document itself. */
  readonly path: string;
  readonly message: string;
}

export function formatProblem(p: Problem): string {
  return `${p.file}:${p.line}:${p.col}: ${p.path ? `${p.path}: ` : ''}${p.message}`;
}

/** In reading order: by file, line, column. */
export function sortProblems(problems: readonly Problem[]): Problem[] {
  return [...problems].sort((a, b) => a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col);
}

export class ManifestError extends Error {
  readonly exitCode = 2;
  constructor(readonly problems: readonly Problem[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in the manifest:\n` +
        problems.map((p) => `  ${formatProblem(p)}`).join('\n'),
    );
    this.name = 'ManifestError';
  }
}

export type PathSegment = string | number;

const IDENT_RE = /^[A-Za-z_$][A-Za-z0-9_$-]*$/;

/** `['spec','images',3,'ref']` → `spec.images[3].ref`; odd keys get `["…"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENT_RE.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
