// A Sigstore bundle v0.3 attached as a REFERRER counts as a publisher signature at build and
// inside (SPEC §9 "Signature policy", issue 21), end to end: a real distribution 2.8 registry
// upstream (no referrers API: the referrers are listed in the `sha256-<hex>` fallback index, as
// cosign does there), bundles made as cosign 3 signs an image by a test Sigstore PKI made with
// openssl, the CLI as a user runs it, and a second registry as the offline target.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BundleIndex, SignatureVerdict } from '../src/bundle/format.js';
import { runAirlock, type CliResult } from './support/cli.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, MediaTypes, Seeder, type Descriptor, type PushedManifest } from './support/seed.js';
import { AttachedTypes, pushBundleReferrer, pushFallbackIndex, referrerEntry, tagFor, type SeededAttached } from './support/seed-attached.js';
import { makePki, signBundleV3, type TestPki } from './support/sigstore-pki.js';
import { entry, readTar } from './support/tarball.js';

const ISSUER = 'https://token.actions.githubusercontent.com';
const SUBJECT = 'https://github.com/example/app/.github/workflows/release.yml@refs/tags/v1.2.3';
const EPOCH = { ...process.env, SOURCE_DATE_EPOCH: '1767225600' };
const AMD64 = { os: 'linux', architecture: 'amd64' };
const ARM64 = { os: 'linux', architecture: 'arm64' };

let up: TestRegistry;
let seeder: Seeder;
let work: string;
let airlockKey: string;
let pub: string;
let pki: TestPki;
let host: string;
/** single: one manifest signed; multi: an index whose two platforms are each signed; half: only amd64 of two signed. */
const img = {} as Record<'single' | 'multi' | 'half', PushedManifest & { children: Descriptor[] }>;
/** The bundle referrer of each signed subject, by subject digest. */
const referrers = new Map<string, { repo: string; ref: SeededAttached }>();

const exists = (f: string) => access(f).then(() => true, () => false);
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Signs `subject` as cosign 3 does on a registry without the referrers API: the bundle referrer, then the fallback index listing it. */
async function sign(repo: string, subject: Descriptor): Promise<void> {
  const bundle = signBundleV3(pki, `leaf-${referrers.size}`, { digest: subject.digest, subject: SUBJECT, issuer: ISSUER, subjectName: `${host}/${repo}` });
  const r = await pushBundleReferrer(seeder, repo, subject, bundle);
  await pushFallbackIndex(seeder, repo, subject.digest, [referrerEntry(r)]);
  referrers.set(subject.digest, { repo, ref: r });
}

function policyYaml(mode: 'warn' | 'enforce'): string {
  return `apiVersion: airlock/v1
kind: SignaturePolicy
trustedRoot: trusted_root.json
rules:
  - images: ["${host}/gh/**"]
    keyless: { issuer: "${ISSUER}", subject: "${SUBJECT}" }
    mode: ${mode}
default: enforce
`;
}

async function build(name: string, refs: string[], mode: 'warn' | 'enforce'): Promise<CliResult & { file: string; index?: BundleIndex }> {
  const policy = path.join(work, 'policy', `${mode}.yaml`);
  await writeFile(policy, policyYaml(mode));
  const m = path.join(work, `${name}.yaml`);
  await writeFile(m, `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: ${name}\nspec:\n  registries:\n    "${host}": {plainHttp: true}\n  images:\n${refs.map((r) => `    - ${host}/${r}\n`).join('')}`);
  const file = path.join(work, `${name}.tar`);
  const r = await runAirlock(['build', m, '-o', file, '--key', airlockKey, '--cache', path.join(work, 'cache'), '--policy', policy], undefined, { env: EPOCH });
  if (r.code !== 0) return { ...r, file };
  return { ...r, file, index: JSON.parse(entry(await readTar(file), 'bundle.json').data.toString('utf8')) as BundleIndex };
}

const verdictOf = (index: BundleIndex | undefined, ref: string): SignatureVerdict => {
  const v = index?.signatures?.find((s) => s.ref === `${host}/${ref}`);
  assert.ok(v, `no verdict for ${ref} in ${JSON.stringify(index?.signatures)}`);
  return v;
};

before(async () => {
  work = await makeTempDir('airlock-sigbundle-');
  await mkdir(path.join(work, 'policy'), { recursive: true });
  up = await startRegistry();
  host = up.host;
  seeder = new Seeder({ url: up.url });
  pki = makePki(work, 'good');
  await writeFile(path.join(work, 'policy', 'trusted_root.json'), JSON.stringify(pki.trustedRoot));
  const k = await runAirlock(['keygen', '--out', path.join(work, 'airlock')]);
  assert.equal(k.code, 0, k.stderr);
  airlockKey = path.join(work, 'airlock.key');
  pub = path.join(work, 'airlock.pub');

  const single = await seeder.pushImage('gh/single', '1', { layers: [await makeLayer('sigbundle-single', 4096)], format: 'oci' });
  img.single = { ...single, children: [] };
  await sign('gh/single', single.descriptor);
  for (const name of ['multi', 'half'] as const) {
    const children: Descriptor[] = [];
    for (const platform of [AMD64, ARM64]) {
      const c = await seeder.pushImage(`gh/${name}`, undefined, { layers: [await makeLayer(`sigbundle-${name}-${platform.architecture}`, 4096)], format: 'oci', platform });
      children.push(c.descriptor);
    }
    img[name] = { ...(await seeder.pushIndex(`gh/${name}`, '1', children, 'oci')), children };
  }
  // Only the platforms are signed, never the index.
  for (const c of img.multi.children) await sign('gh/multi', c);
  await sign('gh/half', img.half.children[0]!);
});

after(async () => {
  await up?.stop();
  await removeTempDir(work);
});

describe('build --policy with Sigstore-bundle referrers', () => {
  it('under an enforce rule, an index with one of its two platforms unsigned stops the build before any bundle is written, naming it', async () => {
    const r = await build('enforced', ['gh/single:1', 'gh/multi:1', 'gh/half:1'], 'enforce');
    assert.equal(r.code, 1, r.stderr);
    assert.equal(await exists(r.file), false, 'no bundle');
    assert.match(r.stderr, new RegExp(`gh/half:1: signature policy: unsigned under rule 0[^\\n]*\\n\\s+- no signature is attached to platform manifest ${img.half.children[1]!.digest} \\(other platforms of the index are signed\\)`));
    assert.doesNotMatch(r.stderr, /gh\/single:1: signature policy|gh\/multi:1: signature policy/);
  });

  it('under warn: the single image and the index signed platform by platform are verified from their bundle referrers; the half-signed index is not, with a reason', async () => {
    const r = await build('warned', ['gh/single:1', 'gh/multi:1', 'gh/half:1'], 'warn');
    assert.equal(r.code, 0, r.stderr);
    for (const name of ['single', 'multi'] as const) {
      const v = verdictOf(r.index, `gh/${name}:1`);
      assert.deepEqual(
        { digest: v.digest, verdict: v.verdict, format: v.format, signer: v.signer, rule: v.rule },
        { digest: img[name].digest, verdict: 'verified', format: 'sigstore-bundle', signer: `${ISSUER} ${SUBJECT}`, rule: 0 },
        name,
      );
      assert.ok(v.signedAt && Math.abs(Date.parse(v.signedAt) - Date.now()) < 3600_000, `${name}: signedAt is the Rekor SET's time: ${v.signedAt}`);
    }
    const half = verdictOf(r.index, 'gh/half:1');
    // Nothing tried failed: one platform's signature counted, the other platform has none.
    assert.deepEqual([half.verdict, half.mode, half.signer], ['unsigned', 'warn', undefined]);
    assert.deepEqual(half.reasons, [`no signature is attached to platform manifest ${img.half.children[1]!.digest} (other platforms of the index are signed): have every platform signed, or the index`]);
    assert.match(r.stderr, /warning: [^\n]*gh\/half:1: unsigned under rule 0/);
    // The referrers travel: each is an attached entry of bundle.json.
    const carried = new Set(r.index!.attached?.map((a) => a.digest));
    for (const [subject, { ref }] of referrers) assert.ok(carried.has(ref.digest), `the bundle referrer of ${subject} is carried`);
  });
});

describe('inside, offline: verify --signatures and unpack check the bundle referrers again', () => {
  let warned: string;
  let target: TestRegistry;
  before(async () => {
    const r = await build('inside', ['gh/single:1', 'gh/multi:1', 'gh/half:1'], 'warn');
    assert.equal(r.code, 0, r.stderr);
    warned = r.file;
    target = await startRegistry();
    await up.stop();
  });
  after(async () => target?.stop());

  it('verify --signatures: exit 0, the single image and the signed index verified against the carried policy', async () => {
    const r = await runAirlock(['verify', warned, '--pub', pub, '--signatures']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`signature verified\\s+${host}/gh/single:1\\s+${escape(ISSUER)} ${escape(SUBJECT)}`));
    assert.match(r.stdout, new RegExp(`signature verified\\s+${host}/gh/multi:1\\s+${escape(ISSUER)} `));
    assert.match(r.stdout, new RegExp(`signature unsigned\\s+${host}/gh/half:1\\s+rule 0, warn`));
    const j = await runAirlock(['verify', warned, '--pub', pub, '--signatures', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { ok: boolean; signatures: { verified: number; blocked: number } };
    assert.deepEqual([doc.ok, doc.signatures.verified, doc.signatures.blocked], [true, 2, 0]);
  });

  it('unpack into a second registry succeeds with the upstream gone; each bundle referrer is there by digest and listed in its fallback index', async () => {
    const files = await makeTempDir('airlock-sigbundle-files-');
    try {
      const u = await runAirlock(['unpack', warned, '--pub', pub, '--registry', target.host, '--files-dir', files]);
      assert.equal(u.code, 0, u.stderr);
      assert.match(u.stdout, new RegExp(`signature verified\\s+${host}/gh/single:1`));
      const t = new Seeder({ url: target.url });
      const accept = { accept: [MediaTypes.ociManifest, MediaTypes.ociIndex].join(', ') };
      for (const [subject, { repo, ref }] of referrers) {
        const got = await t.fetch('GET', `/v2/${repo}/manifests/${ref.digest}`, { headers: accept });
        assert.equal(got.status, 200, `referrer ${ref.digest} of ${subject}`);
        assert.deepEqual(got.body, ref.manifest, 'byte for byte');
        const fb = await t.fetch('GET', `/v2/${repo}/manifests/${tagFor(subject)}`, { headers: accept });
        assert.equal(fb.status, 200, `fallback index of ${subject}`);
        const listed = (JSON.parse(fb.body.toString('utf8')) as { manifests: Descriptor[] }).manifests;
        assert.ok(listed.some((d) => d.digest === ref.digest && d.artifactType === AttachedTypes.bundle), JSON.stringify(listed));
      }
    } finally {
      await removeTempDir(files);
    }
  });
});
