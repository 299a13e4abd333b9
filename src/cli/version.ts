import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

export const VERSION = pkg.version;
/** Recorded in bundle.json as what wrote it. */
export const TOOL = `airlock ${VERSION}`;
