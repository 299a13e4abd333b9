// Welkin's config schema (the parts airlock writes, test/fixtures/welkin-config-schema.0fc99b2.yaml,
// from elastisys/compliantkubernetes-apps config/schemas/config.yaml @ 0fc99b2), validated the way
// `ck8s validate` does: yajsv, i.e. gojsonschema, which ignores unknown keywords (so `contst` is
// no constraint) and checks format "uri" as Go's url.Parse with a non-empty scheme.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020, type ErrorObject } from 'ajv/dist/2020.js';
import { parse as parseYaml } from 'yaml';

const FIXTURE = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'welkin-config-schema.0fc99b2.yaml');

/** gojsonschema v1.2.0 URIFormatChecker: url.Parse succeeds, the scheme is not empty, no backslash. */
export function goUri(s: string): boolean {
  // url.Parse's getScheme: a letter, then letters, digits, "+", "-", "." up to the first ":".
  if (!/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(s)) return false;
  // What url.Parse refuses: control characters, spaces in the authority; and the checker's backslash.
  return ![...s].some((c) => c <= ' ' || c === '\x7f' || c === '\\');
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('uri', goUri);
ajv.addFormat('yaml', () => true);
const validate = ajv.compile(parseYaml(readFileSync(FIXTURE, 'utf8')) as object);

/** Schema errors for a Welkin config document (a fragment to merge), as `path: message` lines. */
export function welkinSchemaErrors(doc: unknown): string[] {
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`);
}

/** The document with Welkin's `set-me` placeholders in `ips` lists replaced by a TEST-NET netmask. */
export function withPlaceholdersFilled<T>(doc: T): T {
  return JSON.parse(JSON.stringify(doc), (key, value: unknown) => (key === 'ips' && Array.isArray(value) ? value.map((v) => (v === 'set-me' ? '192.0.2.10/32' : v)) : value)) as T;
}

/** Every `ips` list in a document, by key path. */
export function ipsLists(doc: unknown, at = ''): Array<[string, unknown]> {
  if (doc === null || typeof doc !== 'object') return [];
  return Object.entries(doc).flatMap(([k, v]) => (k === 'ips' ? [[`${at}.${k}`, v] as [string, unknown]] : ipsLists(v, `${at}.${k}`)));
}
