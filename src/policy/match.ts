// Which rule of a policy applies to an image: the first whose pattern matches
// the normalized repository of its source reference (SPEC §9), or the default.
import { parseReference, referenceName, type Reference } from '../oci/reference.js';
import { matchesPattern } from './glob.js';
import type { DefaultMode, Policy, PolicyRule } from './types.js';

export type RuleMatch = { readonly index: number; readonly rule: PolicyRule } | { readonly index: 'default'; readonly mode: DefaultMode };

/**
 * `HOST/PATH` of a reference, without tag or digest, Docker Hub as
 * docker.io/library/NAME: what patterns are matched against. Throws
 * ReferenceError for what is not a reference.
 */
export function repositoryOf(ref: string | Reference): string {
  return referenceName(typeof ref === 'string' ? parseReference(ref) : ref);
}

/** The rule that applies to `ref` (a reference as written, or parsed). */
export function ruleFor(policy: Pick<Policy, 'rules' | 'default'>, ref: string | Reference): RuleMatch {
  const repository = repositoryOf(ref);
  for (const rule of policy.rules) {
    if (rule.patterns.some((p) => matchesPattern(p, repository))) return { index: rule.index, rule };
  }
  return { index: 'default', mode: policy.default };
}
