// Landing paths for files: relative, inside the file server root, nothing a
// shell or a server would read as something else.

/** Why a landing path is unsafe, or undefined when it is a plain relative path. */
export function landingPathProblem(p: string): string | undefined {
  if (p === '') return 'is empty';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'is absolute';
  if (p.includes('\\')) return 'contains "\\"';
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
  if (/[\x00-\x1f\x7f]/.test(p)) return 'contains control characters';
  if (p.endsWith('/')) return 'ends with "/"';
  const segments = p.split('/');
  if (segments.some((s) => s === '..')) return 'contains ".."';
  if (segments.some((s) => s === '' || s === '.')) return 'contains an empty or "." segment';
  return undefined;
}
