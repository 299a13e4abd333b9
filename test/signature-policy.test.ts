// The publishers' signatures checked at build and again inside (SPEC §9
// "Signature policy", "Inside"), end to end with real components: a real
// distribution 2.8 registry as upstream and another as the inside target,
// signatures made with openssl (key) and with a test Sigstore PKI made with
// openssl (keyless, Rekor-like SET), the CLI as a user runs it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BundleIndex, SignatureVerdict } from '../src/bundle/format.js';
import { runAirlock, runProcess, type CliResult } from './support/cli.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, Seeder, type PushedImage } from './support/seed.js';
import { opensslKey, opensslSignature, pushTagSignature, simplesigningPayload, type OpensslKey } from './support/seed-signatures.js';
import { makePki, signKeyless, type TestPki } from './support/sigstore-pki.js';
import { entry, readTar } from './support/tarball.js';

const ISSUER = 'https://token.actions.githubusercontent.com';
const SUBJECT = 'https://github.com/example/app/.github/workflows/release.yml@refs/tags/v1.2.3';
const EPOCH = { ...process.env, SOURCE_DATE_EPOCH: '1767225600' };

let up: TestRegistry;
let seeder: Seeder;
let work: string;
let airlockKey: string;
let team: OpensslKey;
let stranger: OpensslKey;
let pki: TestPki;
let otherPki: TestPki;
const img: Record<'keysigned' | 'unsigned' | 'keyless' | 'othersigned' | 'misc', PushedImage> = {} as never;
let host: string;
/** team/multi:1, an index for amd64 and arm64 signed only as a whole (as Falco, Trivy, Dex sign). */
let multi: { index: string; amd64: string; arm64: string };

const sha256hex = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const exists = (f: string) => access(f).then(() => true, () => false);

function manifestYaml(name: string, refs: string[], extra = ''): string {
  return `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: ${name}\nspec:${extra}\n  registries:\n    "${host}": {plainHttp: true}\n  images:\n${refs.map((r) => `    - ${host}/${r}\n`).join('')}`;
}

/** The policy: team key for team/**, keyless for gh/**; `othersigned` under a rule of its own with `mode`; `def` for the rest. */
function policyYaml(o: { othersigned: 'warn' | 'enforce'; def: 'warn' | 'enforce' | 'skip' }): string {
  return `apiVersion: airlock/v1
kind: SignaturePolicy
trustedRoot: trusted_root.json
keys: { team: keys/team.pub }
rules:
  - images: ["${host}/team/othersigned"]
    key: team
    mode: ${o.othersigned}
  - images: ["${host}/team/**"]
    key: team
  - images: ["${host}/gh/**"]
    keyless: { issuer: "${ISSUER}", subject: "${SUBJECT}" }
default: ${o.def}
`;
}

async function writePolicy(name: string, text: string): Promise<string> {
  const file = path.join(work, 'policy', name);
  await writeFile(file, text);
  return file;
}

async function build(name: string, refs: string[], args: string[]): Promise<CliResult & { file: string; index?: BundleIndex }> {
  const m = path.join(work, `${name}.yaml`);
  await writeFile(m, manifestYaml(name, refs));
  const file = path.join(work, `${name}.tar`);
  const r = await runAirlock(['build', m, '-o', file, '--key', airlockKey, '--cache', path.join(work, 'cache'), ...args], undefined, { env: EPOCH });
  if (r.code !== 0) return { ...r, file };
  return { ...r, file, index: JSON.parse(entry(await readTar(file), 'bundle.json').data.toString('utf8')) as BundleIndex };
}

async function catalog(reg: TestRegistry): Promise<string[]> {
  const res = await new Seeder({ url: reg.url }).fetch('GET', '/v2/_catalog');
  return (JSON.parse(res.body.toString('utf8')) as { repositories: string[] }).repositories;
}

const verdictOf = (index: BundleIndex | undefined, name: string): SignatureVerdict => {
  const v = index?.signatures?.find((s) => s.ref === `${host}/${name}`);
  assert.ok(v, `no verdict for ${name} in ${JSON.stringify(index?.signatures)}`);
  return v;
};

before(async () => {
  work = await makeTempDir('airlock-sigpolicy-');
  await mkdir(path.join(work, 'policy', 'keys'), { recursive: true });
  up = await startRegistry();
  host = up.host;
  seeder = new Seeder({ url: up.url });
  team = opensslKey(path.join(work, 'policy', 'keys'), 'team');
  stranger = opensslKey(work, 'stranger');
  pki = makePki(work, 'good');
  otherPki = makePki(work, 'other');
  await writeFile(path.join(work, 'policy', 'trusted_root.json'), JSON.stringify(pki.trustedRoot));
  await writeFile(path.join(work, 'other_root.json'), JSON.stringify(otherPki.trustedRoot));
  const k = await runAirlock(['keygen', '--out', path.join(work, 'airlock')]);
  assert.equal(k.code, 0, k.stderr);
  airlockKey = path.join(work, 'airlock.key');

  for (const name of ['keysigned', 'unsigned', 'keyless', 'othersigned', 'misc'] as const) {
    const repo = name === 'keyless' ? 'gh/keyless' : name === 'misc' ? 'misc/misc' : `team/${name}`;
    img[name] = await seeder.pushImage(repo, '1', { layers: [await makeLayer(`sigpolicy-${name}`, 4096)], format: 'oci' });
  }
  const sign = (repo: string, p: PushedImage, key: OpensslKey) => {
    const payload = simplesigningPayload(`${host}/${repo}`, p.digest);
    return pushTagSignature(seeder, repo, p.digest, [{ payload, annotations: opensslSignature(work, key, payload) }]);
  };
  const amd64 = await seeder.pushImage('team/multi', undefined, { layers: [await makeLayer('sigpolicy-multi-amd64', 4096)], format: 'oci', platform: { os: 'linux', architecture: 'amd64' } });
  const arm64 = await seeder.pushImage('team/multi', undefined, { layers: [await makeLayer('sigpolicy-multi-arm64', 4096)], format: 'oci', platform: { os: 'linux', architecture: 'arm64' } });
  const index = await seeder.pushIndex('team/multi', '1', [amd64.descriptor, arm64.descriptor], 'oci');
  multi = { index: index.digest, amd64: amd64.digest, arm64: arm64.digest };
  const multiPayload = simplesigningPayload(`${host}/team/multi`, index.digest);
  await pushTagSignature(seeder, 'team/multi', index.digest, [{ payload: multiPayload, annotations: opensslSignature(work, team, multiPayload) }]);
  await sign('team/keysigned', img.keysigned, team);
  await sign('team/othersigned', img.othersigned, stranger);
  const payload = simplesigningPayload(`${host}/gh/keyless`, img.keyless.digest);
  await pushTagSignature(seeder, 'gh/keyless', img.keyless.digest, [{ payload, annotations: signKeyless(pki, 'leaf', payload, { subject: SUBJECT, issuer: ISSUER }) }]);
});

after(async () => {
  await up?.stop();
  await removeTempDir(work);
});

describe('build --policy', () => {
  it('an unsigned image under an enforce rule stops the build before any bundle is written, naming the image, the rule and why', async () => {
    const policy = await writePolicy('enforce.yaml', policyYaml({ othersigned: 'enforce', def: 'enforce' }));
    // The dry run (manifests and signatures fetched, no layer, nothing written) already says so.
    const dry = await build('refused-dry', ['team/keysigned:1', 'team/unsigned:1', 'team/othersigned:1'], ['--policy', policy, '--dry-run']);
    assert.equal(dry.code, 1, dry.stderr);
    assert.match(dry.stderr, /team\/unsigned:1: signature policy: unsigned under rule 1/);
    assert.match(dry.stdout, new RegExp(`signature verified\\s+${host}/team/keysigned:1\\s+key:team`));
    assert.equal(await exists(dry.file), false);
    const r = await build('refused', ['team/keysigned:1', 'team/unsigned:1', 'team/othersigned:1'], ['--policy', policy]);
    assert.equal(r.code, 1, r.stderr);
    assert.equal(await exists(r.file), false, 'no bundle');
    assert.equal(await exists(`${r.file}.sha256`), false, 'no checksum file');
    assert.match(r.stderr, new RegExp(`team/unsigned:1: signature policy: unsigned under rule 1 \\(images ${host}/team/\\*\\*; key team \\(${team.fingerprint}\\); enforce\\)`));
    assert.match(r.stderr, /no signature is attached to sha256:/);
    // Signed by another key: tried, and the reason names the key the rule wants.
    assert.match(r.stderr, /team\/othersigned:1: signature policy: failed under rule 0[^\n]*\n\s+- sha256-[a-f0-9]{64}\.sig: the signature does not verify with key team/);
    assert.doesNotMatch(r.stderr, /team\/keysigned:1: signature policy/);
  });

  it('with warn rules and default warn the bundle is written: every verdict and signer signed into bundle.json, the policy, key and trusted root carried byte for byte', async () => {
    const policy = await writePolicy('warn.yaml', policyYaml({ othersigned: 'warn', def: 'warn' }));
    const r = await build('warned', ['team/keysigned:1', 'gh/keyless:1', 'team/othersigned:1', 'misc/misc:1'], ['--policy', policy]);
    assert.equal(r.code, 0, r.stderr);
    const key = verdictOf(r.index, 'team/keysigned:1');
    assert.deepEqual({ ...key }, { ref: `${host}/team/keysigned:1`, digest: img.keysigned.digest, rule: 1, mode: 'enforce', verdict: 'verified', signer: `key:team ${team.fingerprint}`, format: 'tag-scheme' });
    const keyless = verdictOf(r.index, 'gh/keyless:1');
    assert.equal(keyless.verdict, 'verified');
    assert.equal(keyless.signer, `${ISSUER} ${SUBJECT}`);
    assert.equal(keyless.rule, 2);
    assert.ok(keyless.signedAt && Math.abs(Date.parse(keyless.signedAt) - Date.now()) < 3600_000, keyless.signedAt);
    const other = verdictOf(r.index, 'team/othersigned:1');
    assert.equal(other.verdict, 'failed');
    assert.equal(other.mode, 'warn');
    assert.match(other.reasons?.[0] ?? '', /does not verify with key team/);
    const misc = verdictOf(r.index, 'misc/misc:1');
    assert.deepEqual([misc.verdict, misc.rule, misc.mode], ['skipped', 'default', 'warn']);
    assert.match(r.stderr, /warning: [^\n]*team\/othersigned:1: failed under rule 0/);
    assert.match(r.stderr, /warning: [^\n]*misc\/misc:1: skipped under the policy's default/);
    // The policy travels: its bytes, the key's and the trusted root's are blobs of the tar.
    const tar = await readTar(r.file);
    const p = r.index!.policy!;
    assert.equal(p.digest, `sha256:${sha256hex(await readFile(policy))}`);
    assert.equal(entry(tar, `blobs/sha256/${p.digest.slice(7)}`).data.toString('utf8'), await readFile(policy, 'utf8'));
    const files = Object.fromEntries(p.files.map((f) => [f.path, f]));
    assert.deepEqual(Object.keys(files).sort(), ['keys/team.pub', 'trusted_root.json']);
    assert.deepEqual(entry(tar, `blobs/sha256/${files['keys/team.pub']!.digest.slice(7)}`).data, await readFile(team.pub));
    assert.equal(files['trusted_root.json']!.role, 'trusted-root');
    // inspect shows verdict and signer per image.
    const ins = await runAirlock(['inspect', r.file]);
    assert.equal(ins.code, 0, ins.stderr);
    assert.match(ins.stdout, new RegExp(`team/keysigned:1 [^\\n]*\\n\\s+signature\\s+verified\\s+key:team ${team.fingerprint}`));
    assert.match(ins.stdout, new RegExp(`gh/keyless:1 [^\\n]*\\n\\s+signature\\s+verified\\s+${ISSUER} ${SUBJECT.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(ins.stdout, /othersigned:1 [^\n]*\n\s+signature\s+FAILED\s+\(rule 0, warn\): [^\n]*does not verify with key team/);
  });

  it('a delta built with a policy keeps what the check reads in its tar (the signatures, the policy) although its base holds them, so verify --signatures needs no base', async () => {
    const policy = await writePolicy('delta.yaml', policyYaml({ othersigned: 'warn', def: 'warn' }));
    const refs = ['team/keysigned:1', 'gh/keyless:1'];
    const base = await build('delta-base', refs, ['--policy', policy]);
    assert.equal(base.code, 0, base.stderr);
    const delta = await build('delta', refs, ['--policy', policy, '--base', base.file]);
    assert.equal(delta.code, 0, delta.stderr);
    const ext = new Set(delta.index!.blobs.filter((b) => b.external).map((b) => b.digest));
    assert.ok(ext.size > 0, 'the layers are external');
    for (const a of delta.index!.attached ?? []) assert.ok(!ext.has(a.digest), `signature manifest ${a.digest} is in the tar`);
    for (const d of [delta.index!.policy!.digest, ...delta.index!.policy!.files.map((f) => f.digest)]) assert.ok(!ext.has(d), `policy blob ${d} is in the tar`);
    const v = await runAirlock(['verify', delta.file, '--pub', path.join(work, 'airlock.pub'), '--signatures', '--json']);
    assert.equal(v.code, 0, v.stderr);
    assert.equal((JSON.parse(v.stdout) as { signatures: { verified: number } }).signatures.verified, 2);
  });

  it('sync --policy checks before pushing: an enforce failure pushes nothing', async () => {
    const strict = await writePolicy('sync-strict.yaml', policyYaml({ othersigned: 'enforce', def: 'enforce' }));
    const m = path.join(work, 'sync.yaml');
    await writeFile(m, manifestYaml('sync', ['team/keysigned:1', 'team/othersigned:1']));
    const target = await startRegistry();
    const files = await makeTempDir('airlock-sigpolicy-files-');
    try {
      const r = await runAirlock(['sync', m, '--registry', target.host, '--files-dir', files, '--cache', path.join(work, 'cache'), '--policy', strict]);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /team\/othersigned:1 \(sha256:[a-f0-9]{64}\): failed under rule 0/);
      assert.deepEqual(await catalog(target), []);
      const ok = await runAirlock(['sync', m, '--registry', target.host, '--files-dir', files, '--cache', path.join(work, 'cache'), '--policy', await writePolicy('sync-warn.yaml', policyYaml({ othersigned: 'warn', def: 'enforce' }))]);
      assert.equal(ok.code, 0, ok.stderr);
      assert.match(ok.stdout, new RegExp(`signature verified\\s+${host}/team/keysigned:1`));
    } finally {
      await target.stop();
      await removeTempDir(files);
    }
  });

  it('spec.policy (relative to the manifest) is used without --policy; --policy wins over it; a broken policy is exit 2 at its line before any download', async () => {
    await writePolicy('spec-enforce.yaml', policyYaml({ othersigned: 'enforce', def: 'enforce' }));
    const m = path.join(work, 'spec-policy.yaml');
    await writeFile(m, manifestYaml('spec-policy', ['team/unsigned:1'], '\n  policy: policy/spec-enforce.yaml'));
    const out = path.join(work, 'spec-policy.tar');
    const cache = ['--cache', path.join(work, 'cache')];
    const refused = await runAirlock(['build', m, '-o', out, '--key', airlockKey, ...cache], undefined, { env: EPOCH });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /team\/unsigned:1: signature policy: unsigned under rule 1/);
    const lenient = await writePolicy('spec-lenient.yaml', policyYaml({ othersigned: 'warn', def: 'warn' }).replace(/(key: team\n)(?! {4}mode)/, '$1    mode: warn\n'));
    const ok = await runAirlock(['build', m, '-o', out, '--key', airlockKey, ...cache, '--policy', lenient], undefined, { env: EPOCH });
    assert.equal(ok.code, 0, ok.stderr);
    const index = JSON.parse(entry(await readTar(out), 'bundle.json').data.toString('utf8')) as BundleIndex;
    assert.equal(index.policy?.name, 'spec-lenient.yaml');
    assert.deepEqual([index.signatures?.[0]?.verdict, index.signatures?.[0]?.mode], ['unsigned', 'warn']);
    const broken = await writePolicy('broken.yaml', policyYaml({ othersigned: 'warn', def: 'warn' }).replace('key: team\n    mode: warn', 'key: teem\n    mode: warn'));
    const bad = await runAirlock(['build', m, '-o', path.join(work, 'broken.tar'), '--key', airlockKey, '--cache', path.join(work, 'cache-broken'), '--policy', broken]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /broken\.yaml:7:\d+: rules\[0\]\.key: names the key "teem", which keys does not list; did you mean "team"\?/);
    assert.equal(await exists(path.join(work, 'cache-broken')), false, 'nothing was downloaded (no cache made)');
  });

  it('a platform filter rewrites an index signed only as a whole: its upstream signature (carried, never pushed) counts when the upstream index lists the platform kept', async () => {
    const policy = await writePolicy('multi.yaml', policyYaml({ othersigned: 'enforce', def: 'enforce' }));
    const r = await build('multi', ['team/multi:1'], ['--policy', policy, '--platform', 'linux/amd64']);
    assert.equal(r.code, 0, r.stderr);
    const image = r.index!.images[0]!;
    assert.equal(image.upstreamDigest, multi.index, 'the index was rewritten');
    const v = verdictOf(r.index, 'team/multi:1');
    assert.deepEqual([v.verdict, v.signer, v.upstreamIndex], ['verified', `key:team ${team.fingerprint}`, multi.index]);
    const carried = r.index!.attached ?? [];
    assert.equal(carried.length, 1);
    assert.deepEqual([carried[0]!.subject, carried[0]!.upstream, carried[0]!.tag], [multi.index, true, `${multi.index.replace(':', '-')}.sig`]);
    assert.ok(r.index!.blobs.some((b) => b.digest === multi.index), 'the upstream index travels as a blob');
    // Without a policy nothing is checked, and nothing about the upstream index is carried (as before).
    const plain = await build('multi-plain', ['team/multi:1'], ['--platform', 'linux/amd64']);
    assert.equal(plain.code, 0, plain.stderr);
    assert.equal(plain.index!.attached, undefined);
    assert.match(plain.stderr, /attached to its upstream index [^\n]*which the platform filter rewrote; they are left out/);
    // Inside: checked again, offline; the image goes in, the upstream signature does not (nothing there has its subject).
    const pub = path.join(work, 'airlock.pub');
    const v2 = await runAirlock(['verify', r.file, '--pub', pub, '--signatures']);
    assert.equal(v2.code, 0, v2.stderr);
    const target = await startRegistry();
    const files = await makeTempDir('airlock-sigpolicy-files-');
    try {
      const u = await runAirlock(['unpack', r.file, '--pub', pub, '--registry', target.host, '--files-dir', files, '--receipt', path.join(files, 'receipt.json')]);
      assert.equal(u.code, 0, u.stderr);
      const t = new Seeder({ url: target.url });
      assert.equal((await t.getManifest('team/multi', '1')).status, 200);
      assert.equal((await t.getManifest('team/multi', `${multi.index.replace(':', '-')}.sig`)).status, 404, 'the upstream signature is not pushed');
      const receipt = JSON.parse(await readFile(path.join(files, 'receipt.json'), 'utf8')) as { attached?: unknown[] };
      assert.equal((receipt.attached ?? []).length, 0);
    } finally {
      await target.stop();
      await removeTempDir(files);
    }
  });

  it('--policy with --no-attached is a usage error (exit 2): there would be nothing to check', async () => {
    const policy = await writePolicy('warn2.yaml', policyYaml({ othersigned: 'warn', def: 'warn' }));
    const r = await build('noatt', ['team/keysigned:1'], ['--policy', policy, '--no-attached']);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /--policy checks the signatures carried with the images, and --no-attached carries none/);
  });
});

describe('inside: verify --signatures, unpack, offline against the carried policy or one given', () => {
  let warned: string;
  let pub: string;
  let target: TestRegistry;
  before(async () => {
    const policy = await writePolicy('warn-inside.yaml', policyYaml({ othersigned: 'warn', def: 'warn' }));
    const r = await build('inside', ['team/keysigned:1', 'gh/keyless:1', 'team/othersigned:1', 'misc/misc:1'], ['--policy', policy]);
    assert.equal(r.code, 0, r.stderr);
    warned = r.file;
    pub = path.join(work, 'airlock.pub');
    target = await startRegistry();
    // Offline inside: the upstream registry is gone.
    await up.stop();
  });
  after(async () => target?.stop());

  it('verify --signatures checks the carried signatures again against the carried policy: exit 0, each verdict printed', async () => {
    const r = await runAirlock(['verify', warned, '--pub', pub, '--signatures']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /checked against the policy the bundle carries/);
    assert.match(r.stdout, new RegExp(`signature verified\\s+${host}/team/keysigned:1\\s+key:team ${team.fingerprint}`));
    assert.match(r.stdout, new RegExp(`signature verified\\s+${host}/gh/keyless:1\\s+${ISSUER} `));
    assert.match(r.stdout, new RegExp(`signature failed\\s+${host}/team/othersigned:1\\s+rule 0, warn`));
    const j = await runAirlock(['verify', warned, '--pub', pub, '--signatures', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { ok: boolean; signatures: { policy: string; verified: number; blocked: number; verdicts: SignatureVerdict[] } };
    assert.deepEqual([doc.ok, doc.signatures.policy, doc.signatures.verified, doc.signatures.blocked], [true, 'carried', 2, 0]);
  });

  it('verify - --signatures reads the carried policy from the stream too', async () => {
    const r = await runAirlock(['verify', '-', '--pub', pub, '--signatures'], await readFile(warned));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`signature verified\\s+${host}/gh/keyless:1`));
  });

  it('an enforce --policy given inside wins over the carried warn policy: verify exits 1, unpack refuses before anything is pushed', async () => {
    const strict = await writePolicy('strict-inside.yaml', policyYaml({ othersigned: 'enforce', def: 'enforce' }));
    const v = await runAirlock(['verify', warned, '--pub', pub, '--signatures', '--policy', strict]);
    assert.equal(v.code, 1, v.stderr);
    assert.match(v.stderr, /2 image\(s\) have no signature that counts under an enforce rule/);
    assert.match(v.stderr, /team\/othersigned:1 \(sha256:[a-f0-9]{64}\): failed under rule 0/);
    assert.match(v.stderr, /misc\/misc:1 \(sha256:[a-f0-9]{64}\): skipped under the policy's default \(enforce: no rule matches\)/);
    const files = await makeTempDir('airlock-sigpolicy-files-');
    try {
      const u = await runAirlock(['unpack', warned, '--pub', pub, '--registry', target.host, '--files-dir', files, '--policy', strict]);
      assert.equal(u.code, 1, u.stderr);
      assert.match(u.stderr, /nothing was pushed/);
      assert.deepEqual(await catalog(target), [], 'the target registry is still empty');
    } finally {
      await removeTempDir(files);
    }
  });

  it('--trusted-root given inside wins over the carried one: the keyless signature no longer chains and, under its enforce rule, stops the unpack', async () => {
    const files = await makeTempDir('airlock-sigpolicy-files-');
    try {
      const u = await runAirlock(['unpack', warned, '--pub', pub, '--registry', target.host, '--files-dir', files, '--trusted-root', path.join(work, 'other_root.json')]);
      assert.equal(u.code, 1, u.stderr);
      assert.match(u.stderr, /gh\/keyless:1 \(sha256:[a-f0-9]{64}\): failed under rule 2[^\n]*\n\s+- sha256-[a-f0-9]{64}\.sig: the certificate does not chain to a Fulcio CA of the trusted root/);
      assert.deepEqual(await catalog(target), []);
    } finally {
      await removeTempDir(files);
    }
  });

  it("unpack --countersign adds the inside key's cosign signature to every verified image, beside the publisher's; a rerun changes nothing; openssl verifies it", async () => {
    const inside = path.join(work, 'inside');
    const k = await runAirlock(['keygen', '--out', inside]);
    assert.equal(k.code, 0, k.stderr);
    const reg = await startRegistry();
    const files = await makeTempDir('airlock-sigpolicy-files-');
    try {
      const args = ['unpack', warned, '--pub', pub, '--registry', reg.host, '--files-dir', files, '--countersign', `${inside}.key`];
      const u = await runAirlock(args);
      assert.equal(u.code, 0, u.stderr);
      assert.match(u.stdout, new RegExp(`countersigned \\(new\\) ${reg.host}/team/keysigned:sha256-[a-f0-9]{64}\\.sig`));
      assert.match(u.stdout, new RegExp(`countersigned \\(new\\) ${reg.host}/gh/keyless:sha256-[a-f0-9]{64}\\.sig`));
      assert.doesNotMatch(u.stdout, /countersigned [^\n]*(othersigned|misc)/, 'only verified images are countersigned');
      const t = new Seeder({ url: reg.url });
      const tag = `${img.keysigned.digest.replace(':', '-')}.sig`;
      const first = await t.getManifest('team/keysigned', tag);
      const m = JSON.parse(first.body.toString('utf8')) as { layers: Array<{ digest: string; annotations: Record<string, string> }> };
      assert.equal(m.layers.length, 2, "the publisher's signature and ours");
      // The publisher's layer is verified by its key with openssl, ours by the inside key.
      const check = async (layer: { digest: string; annotations: Record<string, string> }, pubFile: string) => {
        const payload = (await t.fetch('GET', `v2/team/keysigned/blobs/${layer.digest}`)).body;
        await writeFile(path.join(work, 'cs.payload'), payload);
        await writeFile(path.join(work, 'cs.sig'), Buffer.from(layer.annotations['dev.cosignproject.cosign/signature']!, 'base64'));
        const r = await runProcess(['openssl', 'dgst', '-sha256', '-verify', pubFile, '-signature', path.join(work, 'cs.sig'), path.join(work, 'cs.payload')]);
        return { ok: r.code === 0 && /Verified OK/.test(r.stdout), payload: payload.toString('utf8') };
      };
      assert.equal((await check(m.layers[0]!, team.pub)).ok, true);
      const ours = await check(m.layers[1]!, `${inside}.pub`);
      assert.equal(ours.ok, true);
      assert.ok(ours.payload.includes(`"docker-reference":"${reg.host}/team/keysigned"`) && ours.payload.includes(img.keysigned.digest), ours.payload);
      // A rerun: nothing pushed over the countersigned .sig, nothing signed again.
      const again = await runAirlock(args);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /countersigned \(already\)/);
      assert.doesNotMatch(again.stdout, /countersigned \(new\)/);
      assert.equal((await t.getManifest('team/keysigned', tag)).headers['docker-content-digest'], first.headers['docker-content-digest']);
      // Without any policy there is nothing to say which images counted (a bundle built without one, earlier in this file).
      const none = await runAirlock(['unpack', path.join(work, 'multi-plain.tar'), '--pub', pub, '--registry', reg.host, '--files-dir', files, '--countersign', `${inside}.key`]);
      assert.equal(none.code, 2, none.stderr);
      assert.match(none.stderr, /--countersign signs the images whose publisher signatures counted, but [^\n]* carries no signature policy; give --policy FILE/);
    } finally {
      await reg.stop();
      await removeTempDir(files);
    }
  });

  it('unpack with the carried policy checks again, pushes, and prints each verdict', async () => {
    const files = await makeTempDir('airlock-sigpolicy-files-');
    try {
      const u = await runAirlock(['unpack', warned, '--pub', pub, '--registry', target.host, '--files-dir', files]);
      assert.equal(u.code, 0, u.stderr);
      assert.match(u.stdout, /publisher signatures checked against the policy the bundle carries:/);
      assert.match(u.stdout, new RegExp(`signature verified\\s+${host}/team/keysigned:1\\s+key:team`));
      assert.match(u.stderr, /warning: [^\n]*team\/othersigned:1: failed under rule 0/);
      assert.ok((await catalog(target)).includes('team/keysigned'));
    } finally {
      await removeTempDir(files);
    }
  });
});
