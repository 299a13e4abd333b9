// The signature policy (SPEC §9) as the verifier and the bundle consume it:
// loaded once, checked whole, nothing left to parse or resolve later. The raw
// bytes of the policy, its keys and its trusted root are kept because they
// travel in the bundle as entries and are checked again inside.
import type { KeyObject } from 'node:crypto';
import type { RepositoryPattern } from './glob.js';

export type RuleMode = 'enforce' | 'warn';
export type DefaultMode = RuleMode | 'skip';

/** A file the policy was read from, kept byte for byte. */
export interface PolicySource {
  /** Absolute path. */
  readonly file: string;
  readonly bytes: Buffer;
  /** `sha256:<hex>` of `bytes`. */
  readonly sha256: string;
  /** A file the policy names: the path as the policy writes it (how the bundle carries it). */
  readonly written?: string;
}

export interface KeylessIdentity {
  readonly kind: 'keyless';
  /** The OIDC issuer the certificate must name, compared exactly. */
  readonly issuer: string;
  /** Compared exactly; absent when `subjectRegExp` is given. */
  readonly subject?: string;
  /** What was written, for messages and the bundle. */
  readonly subjectRegExpSource?: string;
  /** Anchored by airlock (`^(?:…)$`): it must match the whole subject. */
  readonly subjectRegExp?: RegExp;
}

export interface PolicyKey {
  readonly name: string;
  readonly key: KeyObject;
  /** `sha256:<hex>` of the SPKI DER: the signer is shown as `key:NAME sha256:…`. */
  readonly fingerprint: string;
  /** `ec P-256`, `ec P-384`, `rsa 4096`, `ed25519`: for messages. */
  readonly type: string;
  readonly source: PolicySource;
}

export interface KeyIdentity {
  readonly kind: 'key';
  readonly name: string;
  readonly key: KeyObject;
  readonly fingerprint: string;
}

export interface PolicyRule {
  /** Position in `rules[]`, as the verdict names it. */
  readonly index: number;
  /** The patterns as written. */
  readonly images: readonly string[];
  readonly patterns: readonly RepositoryPattern[];
  readonly identity: KeylessIdentity | KeyIdentity;
  readonly mode: RuleMode;
}

export interface TrustedRoot {
  /** The parsed JSON, shape-checked lightly; @sigstore checks it in depth. */
  readonly json: Record<string, unknown>;
  readonly source: PolicySource;
}

export interface Policy {
  readonly source: PolicySource;
  readonly rules: readonly PolicyRule[];
  readonly default: DefaultMode;
  /** Absent only when no rule is keyless and none was given. */
  readonly trustedRoot?: TrustedRoot;
  readonly keys: ReadonlyMap<string, PolicyKey>;
  /** `file:line:col: path: message` for what loads but is probably not meant. */
  readonly warnings: readonly string[];
}
