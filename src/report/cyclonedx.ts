// The transfer as a CycloneDX 1.6 SBOM (SPEC §10): the bundle is the BOM's
// subject (metadata.component), airlock its tool, each image a `container`
// component with a `pkg:oci` purl (purl-spec's OCI type: the name is the
// repository's last segment, lowercased; the version the digest; the source
// repository and tag as qualifiers), each artifact and file a `file` component
// with its SHA-256. Written as plain objects: the shape is small and fixed, and
// the tests check it against CycloneDX's own JSON schema
// (test/fixtures/cyclonedx/), which is what a consumer checks it against too.
import { createHash } from 'node:crypto';
import { parseReference, referenceName } from '../oci/reference.js';
import type { ReportImage, ReportModel } from './model.js';

export const CYCLONEDX_SPEC_VERSION = '1.6';

interface Property {
  name: string;
  value: string;
}

interface Component {
  type: 'container' | 'file';
  'bom-ref': string;
  name: string;
  version?: string;
  purl?: string;
  hashes?: Array<{ alg: 'SHA-256'; content: string }>;
  externalReferences?: Array<{ type: 'distribution'; url: string }>;
  properties?: Property[];
}

export interface CycloneDxBom {
  bomFormat: 'CycloneDX';
  specVersion: typeof CYCLONEDX_SPEC_VERSION;
  serialNumber: string;
  version: 1;
  metadata: {
    timestamp: string;
    tools: { components: Array<{ type: 'application'; name: string; version: string }> };
    component: Component;
    properties?: Property[];
  };
  components: Component[];
  dependencies: Array<{ ref: string; dependsOn: string[] }>;
}

/** purl-spec's percent-encoding for a qualifier value: what encodeURIComponent escapes, but ':' and '/' kept as its examples keep them. */
const qualifier = (v: string) => encodeURIComponent(v).replace(/%3A/gi, ':').replace(/%2F/gi, '/');

/** `pkg:oci/NAME@sha256%3A<hex>?arch=…&repository_url=HOST/PATH&tag=…` (qualifiers in key order, as purl's canonical form sorts them). */
export function ociPurl(ref: string, digest: string, arch?: string): string {
  const r = parseReference(ref);
  const repository = referenceName(r);
  const name = (r.repository.split('/').pop() ?? r.repository).toLowerCase();
  const q: Array<[string, string]> = [];
  if (arch !== undefined) q.push(['arch', arch]);
  q.push(['repository_url', repository]);
  if (r.tag !== undefined) q.push(['tag', r.tag]);
  return `pkg:oci/${encodeURIComponent(name)}@${encodeURIComponent(digest)}?${q.map(([k, v]) => `${k}=${qualifier(v)}`).join('&')}`;
}

/** A name-based (version 5) UUID: the same bundle gets the same serial number, so two reports of it can be told to be of one thing. */
function uuid5(name: string): string {
  // RFC 4122's URL namespace.
  const ns = Buffer.from('6ba7b8119dad11d180b400c04fd430c8', 'hex');
  const h = createHash('sha1').update(ns).update(name, 'utf8').digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

const hex = (digest: string) => digest.replace(/^sha256:/, '');
const prop = (name: string, value: string | number | undefined): Property[] => (value === undefined ? [] : [{ name: `airlock:${name}`, value: String(value) }]);

function imageComponent(i: ReportImage): Component {
  let purl: string | undefined;
  let name = i.ref;
  let version = i.digest;
  try {
    const r = parseReference(i.ref);
    name = referenceName(r);
    version = r.tag ?? i.digest;
    const arch = i.platforms?.length === 1 ? i.platforms[0]!.split('/')[1] : undefined;
    purl = ociPurl(i.ref, i.digest, arch);
  } catch {
    // bundle.json's references were checked when it was read; a receipt's too. Kept whole, without a purl, if one is not.
  }
  const properties = [
    ...prop('kind', i.kind),
    ...prop('role', i.role),
    ...prop('digest', i.digest),
    ...prop('mediaType', i.mediaType),
    ...(i.platforms ?? []).flatMap((p) => prop('platform', p)),
    ...prop('size', i.size),
    ...prop('upstreamDigest', i.upstreamDigest),
    ...prop('target', i.target),
    ...(i.verdict ? [...prop('signature:verdict', i.verdict.verdict), ...prop('signature:signer', i.verdict.signer), ...prop('signature:signedAt', i.verdict.signedAt), ...prop('signature:rule', `${i.verdict.rule} (${i.verdict.mode})`)] : []),
    ...i.attached.flatMap((a) => prop(`attached:${a.kind}`, `${a.via} ${a.digest}`)),
  ];
  return {
    type: i.kind === 'image' ? 'container' : 'file',
    'bom-ref': `${i.kind}:${i.ref}`,
    name,
    version,
    ...(purl !== undefined && { purl }),
    hashes: [{ alg: 'SHA-256', content: hex(i.digest) }],
    properties,
  };
}

/** An http(s) URL as the WHATWG parser writes it (percent-encoded: a valid IRI reference), or undefined. */
function distributionUrl(source: string | undefined): string | undefined {
  if (source === undefined) return undefined;
  try {
    const u = new URL(source);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

export function cyclonedx(m: ReportModel): CycloneDxBom {
  const identity = m.bundle.bundleJsonSha256 ?? m.bundle.receiptSha256 ?? `${m.bundle.name}\0${m.bundle.version}\0${m.bundle.created}`;
  const toolVersion = m.tool.replace(/^airlock\s+/, '');
  const components: Component[] = [
    ...m.images.map(imageComponent),
    ...m.files.map((f): Component => {
      const url = distributionUrl(f.source);
      return {
        type: 'file',
        'bom-ref': `file:${f.path}`,
        name: f.path,
        hashes: [{ alg: 'SHA-256', content: f.sha256 }],
        ...(url !== undefined && { externalReferences: [{ type: 'distribution', url }] }),
        properties: [...prop('kind', 'file'), ...prop('role', f.role), ...prop('size', f.size), ...prop('source', f.source), ...(f.external ? prop('external', 'true') : [])],
      };
    }),
  ];
  const bundle: Component = {
    type: 'file',
    'bom-ref': 'bundle',
    name: m.bundle.name,
    ...(m.bundle.version && { version: m.bundle.version }),
    ...(m.source.tarSha256 !== undefined && { hashes: [{ alg: 'SHA-256', content: m.source.tarSha256 }] }),
    properties: [
      ...prop('bundle.json:sha256', m.bundle.bundleJsonSha256),
      ...prop('receipt:sha256', m.bundle.receiptSha256),
      ...prop('created', m.bundle.created),
      ...prop('builtBy', m.bundle.builtBy),
      ...prop('signer:fingerprint', m.signature.fingerprint),
      ...prop('signature', m.signature.state),
      ...prop('source', m.source.form),
      ...prop('size', m.source.size),
      ...(m.target ? prop('target', `${m.target.registry} (${m.target.layout})`) : []),
      ...m.bases.flatMap((b) => prop('base', `${b.kind} ${b.name} ${b.version} sha256:${b.sha256}`)),
    ],
  };
  return {
    bomFormat: 'CycloneDX',
    specVersion: CYCLONEDX_SPEC_VERSION,
    serialNumber: `urn:uuid:${uuid5(`airlock:${identity}`)}`,
    version: 1,
    metadata: {
      timestamp: m.asOf.replace(/\.\d+Z$/, 'Z'),
      tools: { components: [{ type: 'application', name: 'airlock', version: toolVersion }] },
      component: bundle,
    },
    components,
    dependencies: [{ ref: 'bundle', dependsOn: components.map((c) => c['bom-ref']) }],
  };
}
