// CycloneDX's own JSON schema for BOM 1.6 (test/fixtures/cyclonedx/, see its
// README for origin and licence), compiled with ajv as draft-07 with the two
// schemas it references. ajv-formats is not a dependency: the four formats the
// schemas use are checked here, as RFC 3339 / RFC 3987 / RFC 6531 / RFC 3986
// say them, strictly enough to catch what a broken SBOM would hold.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';

const DIR = path.join(import.meta.dirname, '..', 'fixtures', 'cyclonedx');
const load = (name: string) => JSON.parse(readFileSync(path.join(DIR, name), 'utf8')) as Record<string, unknown>;

// eslint-disable-next-line no-control-regex -- control characters are what an IRI may not hold
const NOT_IN_IRI = /[\x00-\x20\x7f<>"{}|\\^`]/;
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addFormat('date-time', (s: string) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s) && !Number.isNaN(Date.parse(s)));
ajv.addFormat('iri-reference', (s: string) => !NOT_IN_IRI.test(s) && !/%(?![0-9a-f]{2})/i.test(s));
ajv.addFormat('idn-email', (s: string) => /^[^\s@]+@[^\s@]+$/.test(s));
ajv.addFormat('uri', (s: string) => /^[a-z][a-z0-9+.-]*:/i.test(s) && !NOT_IN_IRI.test(s));
ajv.addSchema(load('spdx.schema.json'), 'spdx.schema.json');
ajv.addSchema(load('jsf-0.82.schema.json'), 'jsf-0.82.schema.json');
const validate = ajv.compile(load('bom-1.6.schema.json'));

/** Schema errors of a CycloneDX document, as `path: message` lines; empty when it is valid. */
export function cyclonedxErrors(doc: unknown): string[] {
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e: ErrorObject) => `${e.instancePath || '/'}: ${e.message ?? e.keyword}`);
}
