// A policy's problems are reported all at once, file:line:col, as the
// manifest's are (src/manifest/problems.ts), and exit 2 like them: both are
// files the person wrote and fixes before running again.
import { formatProblem, type Problem } from '../manifest/problems.js';

export class PolicyError extends Error {
  readonly exitCode = 2;
  constructor(readonly problems: readonly Problem[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in the signature policy:\n` +
        problems.map((p) => `  ${formatProblem(p)}`).join('\n'),
    );
    this.name = 'PolicyError';
  }
}
