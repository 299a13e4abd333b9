import { readFileSync } from 'node:fs';

// The release files (scripts/release.ts) have the version baked in: they have no package.json beside them.
declare const AIRLOCK_VERSION: string | undefined;

export const VERSION =
  typeof AIRLOCK_VERSION === 'string'
    ? AIRLOCK_VERSION
    : (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** Recorded in bundle.json as what wrote it. */
export const TOOL = `airlock ${VERSION}`;
