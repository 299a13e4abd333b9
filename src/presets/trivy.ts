// Trivy's vulnerability DB and Java DB: OCI artifacts at the tags Trivy asks
// for when given a repository without a tag (`:2` and `:1`).
import type { PresetContext } from './context.js';

export const TRIVY_DB_DEFAULT = 'ghcr.io/aquasecurity/trivy-db:2';
export const TRIVY_JAVA_DB_DEFAULT = 'ghcr.io/aquasecurity/trivy-java-db:1';

export interface TrivySpec {
  db?: string | boolean;
  javaDb?: string | boolean;
}

export function expandTrivy(spec: TrivySpec, ctx: PresetContext): void {
  const pick = (v: string | boolean | undefined, dflt: string) => (v === undefined || v === true ? dflt : v === false ? undefined : v);
  const db = pick(spec.db, TRIVY_DB_DEFAULT);
  const javaDb = pick(spec.javaDb, TRIVY_JAVA_DB_DEFAULT);
  if (db) ctx.artifact(db, ['spec', 'trivy', ...(typeof spec.db === 'string' ? ['db'] : [])], 'trivy-db');
  if (javaDb) ctx.artifact(javaDb, ['spec', 'trivy', ...(typeof spec.javaDb === 'string' ? ['javaDb'] : [])], 'trivy-java-db');
}
