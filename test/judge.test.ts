// How an image's verdict is reached (src/sign/publisher/judge.ts), offline and
// in memory: which digests a signature may name (the top digest; the upstream
// index a platform filter rewrote, if it lists what is carried; every carried
// platform), the default rule, and the bound on signatures tried. Signatures
// are made by openssl; the policy is loaded by the real loader.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BundleAttached } from '../src/bundle/format.js';
import { loadPolicy } from '../src/policy/load.js';
import { Judge, type BlobSource } from '../src/sign/publisher/judge.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { opensslKey, opensslSignature, SIMPLESIGNING, simplesigningPayload, type OpensslKey } from './support/seed-signatures.js';

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const REPO = 'registry.example/team/app';

let dir: string;
let key: OpensslKey;
let judge: Judge;

/** In-memory blobs by digest, and attached entries built over them as build would list them. */
class Blobs implements BlobSource {
  readonly map = new Map<string, Buffer>();
  put(b: Buffer): string {
    const d = digestOf(b);
    this.map.set(d, b);
    return d;
  }
  blob(d: string): Promise<Buffer> {
    const b = this.map.get(d);
    return b ? Promise.resolve(b) : Promise.reject(new Error(`no blob ${d}`));
  }
  /** A `.sig` manifest for `subject` with one signed layer per payload. */
  sig(subject: string, payloads: Buffer[], o: { upstream?: boolean } = {}): BundleAttached {
    const layers = payloads.map((p) => ({ mediaType: SIMPLESIGNING, digest: this.put(p), size: p.length, annotations: opensslSignature(dir, key, p) }));
    const m = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: this.put(Buffer.from('{}')), size: 2 }, layers }));
    return { subject, repository: REPO, digest: this.put(m), mediaType: 'application/vnd.oci.image.manifest.v1+json', kind: 'signature', tag: `${subject.replace(':', '-')}.sig`, size: m.length, ...(o.upstream && { upstream: true as const }) };
  }
}

before(async () => {
  dir = await makeTempDir('airlock-judge-');
  key = opensslKey(dir, 'team');
  const policy = path.join(dir, 'policy.yaml');
  await writeFile(policy, `apiVersion: airlock/v1\nkind: SignaturePolicy\nkeys: { team: team.pub }\nrules:\n  - images: ["registry.example/team/**"]\n    key: team\ndefault: skip\n`);
  judge = new Judge(await loadPolicy(policy));
});
after(async () => removeTempDir(dir));

describe('which digest a signature may name', () => {
  const child = (n: string) => `sha256:${n.repeat(64)}`;
  const upstreamIndex = (children: string[]) => Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.index.v1+json', manifests: children.map((d) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d, size: 1 })) }));

  it('the upstream index a platform filter rewrote counts when it lists every platform carried, and not otherwise', async () => {
    const b = new Blobs();
    const up = b.put(upstreamIndex([child('a'), child('b')]));
    const sig = b.sig(up, [simplesigningPayload(REPO, up)], { upstream: true });
    const v = await judge.judge({ ref: `${REPO}:1`, digest: child('f'), children: [child('a')], upstreamDigest: up }, [sig], b);
    assert.deepEqual([v.verdict, v.upstreamIndex, v.signer], ['verified', up, `key:team ${key.fingerprint}`]);
    const w = await judge.judge({ ref: `${REPO}:1`, digest: child('f'), children: [child('a'), child('c')], upstreamDigest: up }, [sig], b);
    assert.equal(w.verdict, 'failed');
    assert.match(w.reasons?.join('\n') ?? '', new RegExp(`the signed upstream index ${up} does not list the platform manifest\\(s\\) carried ${child('c')}`));
  });

  it('an index counts when every carried platform is signed; one unsigned platform is not enough', async () => {
    const b = new Blobs();
    const sigs = [b.sig(child('a'), [simplesigningPayload(REPO, child('a'))]), b.sig(child('b'), [simplesigningPayload(REPO, child('b'))])];
    const all = await judge.judge({ ref: `${REPO}:2`, digest: child('e'), children: [child('a'), child('b')] }, sigs, b);
    assert.equal(all.verdict, 'verified');
    const half = await judge.judge({ ref: `${REPO}:2`, digest: child('e'), children: [child('a'), child('b')] }, sigs.slice(0, 1), b);
    assert.equal(half.verdict, 'unsigned', JSON.stringify(half));
    assert.match(half.reasons?.[0] ?? '', /no signature is attached to platform manifest sha256:b{64} \(other platforms of the index are signed\)/);
    const none = await judge.judge({ ref: `${REPO}:2`, digest: child('e'), children: [child('a'), child('b')] }, [], b);
    assert.match(none.reasons?.[0] ?? '', /no signature is attached to sha256:e{64} or to every one of its platforms/);
  });

  it('a payload naming another digest does not count, with its reason', async () => {
    const b = new Blobs();
    const v = await judge.judge({ ref: `${REPO}:3`, digest: child('a'), children: [] }, [b.sig(child('a'), [simplesigningPayload(REPO, child('d'))])], b);
    assert.equal(v.verdict, 'failed');
    assert.match(v.reasons?.[0] ?? '', /sha256-a{64}\.sig: .*sha256:d{64}/);
  });
});

describe('rules and bounds', () => {
  it('an image no rule matches gets the default; skip checks nothing and gives no reason', async () => {
    const v = await judge.judge({ ref: 'quay.io/other/app:1', digest: `sha256:${'1'.repeat(64)}`, children: [] }, [], new Blobs());
    assert.deepEqual([v.verdict, v.rule, v.mode, v.reasons], ['skipped', 'default', 'skip', undefined]);
  });

  it('at most 32 signatures are tried per image; the verdict says the rest were not', async () => {
    const b = new Blobs();
    const subject = `sha256:${'2'.repeat(64)}`;
    // 40 layers signed by the key over payloads naming another digest: each is tried and fails.
    const payloads = Array.from({ length: 40 }, (_, i) => Buffer.from(simplesigningPayload(REPO, `sha256:${'3'.repeat(64)}`).toString().replace('"optional":null', `"optional":{"n":${i}}`)));
    const v = await judge.judge({ ref: `${REPO}:4`, digest: subject, children: [] }, [b.sig(subject, payloads)], b);
    assert.equal(v.verdict, 'failed');
    assert.match(v.reasons![0]!, /more than 32 signatures are attached to sha256:2{64}; the first 32 were tried, the rest were not/);
    assert.equal(v.reasons!.length, 17, 'reasons are bounded: 16 and a count of the rest');
    assert.equal(v.reasons!.at(-1), 'and 17 more');
  });
});
