// Attached manifests in the bundle (SPEC §9): bundle.json attached[] and
// index.json entries as build's compose and writer make them, and what every
// reader of bundle.json does with them: verify walks and counts them, inspect
// lists them per image, diff reports signatures added and changed, --base
// leaves their blobs out, the receipt lists them, skopeo still reads the
// bundle, and the reader refuses every malformed entry by name.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock } from './support/cli.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { skopeoOk } from './support/skopeo.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { entry, readTar } from './support/tarball.js';
import { APP, makeAttachedBundle, OTHER, SIGSTORE_BUNDLE, type AttachedBundle } from './support/attachedbundle.js';
import { BundleError, parseIndex } from '../src/bundle/reader.js';
import type { BundleAttached, BundleIndex } from '../src/bundle/format.js';
import { compareAttached } from '../src/bundle/format.js';
import { loadBase } from '../src/delta/base.js';
import { heldByBases } from '../src/build/bases.js';
import { makeReceipt, parseReceipt, receiptText, ReceiptError } from '../src/delta/receipt.js';

let work: string;
let b: AttachedBundle;

before(async () => {
  work = await makeTempDir('airlock-attached-');
  b = await makeAttachedBundle(work, 'with-attached');
});
after(async () => {
  await removeTempDir(work);
});

describe('a bundle with attached manifests', () => {
  it('lists them in bundle.json, sorted, their manifests and blobs among the blobs', async () => {
    const bj = JSON.parse(entry(await readTar(b.bundle), 'bundle.json').data.toString()) as BundleIndex;
    assert.equal(bj.attached?.length, 2);
    // compose was given them in reverse: sorted by repository, subject, tag (a referrer first), digest.
    assert.deepEqual([...bj.attached!].sort(compareAttached), bj.attached);
    const sig = bj.attached!.find((a) => a.tag);
    assert.deepEqual(sig, b.sig);
    const digests = new Set(bj.blobs.map((x) => x.digest));
    for (const a of bj.attached!) assert.ok(digests.has(a.digest), a.digest);
  });

  it('gives index.json a named entry for the tag-scheme signature and an unnamed one with its artifactType for the referrer', async () => {
    const idx = JSON.parse(entry(await readTar(b.bundle), 'index.json').data.toString()) as { manifests: Array<{ digest: string; artifactType?: string; annotations?: Record<string, string> }> };
    assert.deepEqual(
      idx.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name']),
      [APP, OTHER, `example.com/team/app:sha256-${b.app.slice(7)}.sig`, undefined],
    );
    const sig = idx.manifests[2]!;
    assert.equal(sig.digest, b.sig.digest);
    assert.equal(sig.annotations?.['io.containerd.image.name'], undefined, 'a signature is no image to import');
    const ref = idx.manifests[3]!;
    assert.equal(ref.digest, b.referrer!.digest);
    assert.equal(ref.artifactType, SIGSTORE_BUNDLE);
  });

  it('is still read by skopeo 1.9 as an OCI archive: the image and the tag-scheme signature by name', async () => {
    const out = path.join(work, 'skopeo-out');
    await skopeoOk(['copy', '--all', `oci-archive:${b.bundle}:${APP}`, `oci:${out}:app`]);
    await skopeoOk(['copy', `oci-archive:${b.bundle}:example.com/team/app:sha256-${b.app.slice(7)}.sig`, `oci:${out}:sig`]);
    const idx = JSON.parse(await readFile(path.join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    assert.deepEqual(idx.manifests.map((m) => m.digest), [b.app, b.sig.digest], 'both copied byte for byte (same digests)');
  });

  it('verify walks them and counts them (text and --json)', async () => {
    const r = await runAirlock(['verify', b.bundle, '--pub', b.pub]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /2 images and artifacts with 2 attached \(2 signatures\), 13 blobs/);
    const j = await runAirlock(['verify', b.bundle, '--pub', b.pub, '--json']);
    assert.equal(j.code, 0, j.stderr);
    assert.deepEqual(JSON.parse(j.stdout).attached, { total: 2, signature: 2, attestation: 0, sbom: 0, other: 0 });
    const s = await runAirlock(['verify', '-', '--pub', b.pub], await readFile(b.bundle));
    assert.equal(s.code, 0, s.stderr);
    assert.match(s.stdout, /with 2 attached \(2 signatures\)/);
    // Split in parts smaller than a manifest: the attached ones span parts like any blob.
    const split = await makeAttachedBundle(work, 'split', { splitSize: 700 });
    const p = await runAirlock(['verify', `${split.bundle}.001`, '--pub', split.pub]);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, /with 2 attached \(2 signatures\)/);
  });

  it('inspect lists what is attached under its image (text and --json)', async () => {
    const r = await runAirlock(['inspect', b.bundle]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith(`  ${APP}  `));
    const under = lines.slice(at + 1, at + 3).sort();
    assert.match(under[0]!, new RegExp(`^    signature    referrer  ${b.referrer!.digest.slice(0, 19)}  .*  ${SIGSTORE_BUNDLE.replace(/[.+]/g, '\\$&')}  on ${b.child.slice(0, 19)}$`));
    assert.match(under[1]!, new RegExp(`^    signature    tag sha256-${b.app.slice(7, 19)}….sig  ${b.sig.digest.slice(0, 19)}  [\\d.]+ [KM]?i?B$`), 'on the top digest: no "on"');
    assert.match(lines[at + 3]!, new RegExp(`^  ${OTHER}  `), 'nothing attached to the other image');
    const j = JSON.parse((await runAirlock(['inspect', b.bundle, '--json'])).stdout) as { attached: Array<BundleAttached & { image?: string }> };
    assert.deepEqual(j.attached.map((a) => [a.image, a.kind, a.tag ?? 'referrer', a.subject]).sort(), [[APP, 'signature', 'referrer', b.child], [APP, 'signature', b.sig.tag, b.app]].sort());
  });
});

describe('diff of bundles with attached manifests', () => {
  it('reports a new signature of the same image as changed and a new referrer as added (text and --json)', async () => {
    const old = await makeAttachedBundle(work, 'diff-old', { referrer: false, signatureSeed: 'old' });
    const r = await runAirlock(['diff', old.bundle, b.bundle]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^attached \(signatures, attestations, SBOMs\): 1 added, 0 removed, 1 changed, 0 unchanged$/m);
    assert.match(r.stdout, new RegExp(`^  added    ${APP}  signature \\(referrer\\)  ${b.referrer!.digest}$`, 'm'));
    assert.match(r.stdout, new RegExp(`^  changed  ${APP}  signature \\(sig\\)  ${old.sig.digest} → ${b.sig.digest}$`, 'm'));
    const j = JSON.parse((await runAirlock(['diff', old.bundle, b.bundle, '--json'])).stdout) as { attached: { added: Array<{ digest: string; image: string }>; removed: unknown[]; changed: Array<Record<string, string>>; unchanged: number } };
    assert.deepEqual(j.attached.added.map((a) => [a.image, a.digest]), [[APP, b.referrer!.digest]]);
    assert.deepEqual(j.attached.removed, []);
    assert.deepEqual(j.attached.changed, [{ image: APP, repository: 'example.com/team/app', kind: 'signature', via: 'sig', oldDigest: old.sig.digest, newDigest: b.sig.digest, oldSubject: old.app, newSubject: b.app }]);
    // The other way round: the referrer went; the same bundle against itself: nothing changed.
    const back = JSON.parse((await runAirlock(['diff', b.bundle, old.bundle, '--json'])).stdout) as typeof j;
    assert.deepEqual(back.attached.removed.map((a) => (a as { digest: string }).digest), [b.referrer!.digest]);
    const same = JSON.parse((await runAirlock(['diff', b.bundle, b.bundle, '--json'])).stdout) as typeof j;
    assert.deepEqual([same.attached.added.length, same.attached.removed.length, same.attached.changed.length, same.attached.unchanged], [0, 0, 0, 2]);
  });
});

/** bundle.json's blobs of one attached entry, from the bundle's own graphs. */
async function attachedGraphs(file: string) {
  const { BundleReader } = await import('../src/bundle/reader.js');
  const { readAllGraphs } = await import('../src/bundle/attached.js');
  const reader = await BundleReader.open(file);
  try {
    await reader.scan();
    return { reader, ...(await readAllGraphs(reader)) };
  } finally {
    await reader.close();
  }
}

describe('deltas and receipts with attached manifests', () => {
  it('a bundle given as --base: its attached manifests and blobs are external in the delta, placed with their image; the delta verifies', async () => {
    const base = await loadBase(b.bundle);
    const held = heldByBases([base]);
    const g = await attachedGraphs(b.bundle);
    const sigBlobs = [b.sig.digest, ...g.attached.find((a) => a.entry.digest === b.sig.digest)!.blobs];
    assert.equal(sigBlobs.length, 3);
    for (const d of sigBlobs) assert.deepEqual(held.blobs.get(d), { base: 0, image: APP }, d);

    const delta = await makeAttachedBundle(work, 'delta', { bases: [base], version: '2', signatureSeed: 'new' });
    const bj = delta.index;
    const ext = new Map(bj.blobs.map((x) => [x.digest, x]));
    for (const a of g.attached) for (const d of [a.entry.digest, ...a.blobs]) if (d !== b.sig.digest && !sigBlobs.includes(d)) assert.equal(ext.get(d)?.external, true, d);
    // The referrer is the same: external. The new signature is not: it is in the tar.
    assert.equal(ext.get(b.referrer!.digest)?.external, true);
    assert.deepEqual(ext.get(b.referrer!.digest)?.from, { base: 0, image: APP });
    assert.equal(ext.get(delta.sig.digest)?.external, undefined);
    const names = new Set((await readTar(delta.bundle)).map((e) => e.name));
    assert.ok(!names.has(`blobs/sha256/${b.referrer!.digest.slice(7)}`));
    assert.ok(names.has(`blobs/sha256/${delta.sig.digest.slice(7)}`));
    const r = await runAirlock(['verify', delta.bundle, '--pub', delta.pub]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /with 2 attached \(2 signatures\).*a delta/);
  });

  it('the receipt lists what was pushed, is read back strictly, and as --base makes those blobs external with their repository', async () => {
    const g = await attachedGraphs(b.bundle);
    const idx = g.reader.index;
    const targets = new Map([[APP, 'team/app'], [OTHER, 'team/other']]);
    const receipt = makeReceipt({
      bundleJson: g.reader.bundleJson,
      index: idx,
      registry: { host: 'registry.internal:5000', prefix: '' },
      layout: 'flat',
      held: idx.images.map((i) => {
        const ig = g.images.get(i.ref)!;
        return { target: { repository: targets.get(i.ref)!, tag: '1', digest: i.digest, source: i.ref }, manifests: ig.manifests.map((m) => m.digest), blobs: ig.blobs };
      }),
      attached: g.attached.map((a) => ({ entry: a.entry, repository: 'team/app', manifests: a.manifests.map((m) => m.digest), blobs: a.blobs })),
    });
    const text = receiptText(receipt);
    const back = parseReceipt(Buffer.from(text));
    assert.deepEqual(
      back.attached?.map((a) => [a.digest, a.repository, a.kind, a.tag ?? 'referrer']).sort(),
      [[b.sig.digest, 'team/app', 'signature', b.sig.tag], [b.referrer!.digest, 'team/app', 'signature', 'referrer']].sort(),
    );
    const file = path.join(work, 'receipt.json');
    await writeFile(file, text);
    const base = await loadBase(file);
    assert.deepEqual(base.attached.map((a) => a.image), [APP, APP]);
    const held = heldByBases([base]);
    assert.deepEqual(held.blobs.get(b.sig.digest), { base: 0, repository: 'team/app' });
    const delta = await makeAttachedBundle(work, 'delta-receipt', { bases: [base], version: '2' });
    for (const a of delta.index.attached!) assert.deepEqual(delta.index.blobs.find((x) => x.digest === a.digest)?.from, { base: 0, repository: 'team/app' });

    // A receipt from before attached manifests were carried is still one.
    const { attached: _a, ...old } = receipt;
    assert.equal(parseReceipt(Buffer.from(JSON.stringify(old))).attached, undefined);

    const refuse = (change: (r: { attached: Array<Record<string, unknown>> }) => void, message: RegExp) => {
      const r = JSON.parse(text) as { attached: Array<Record<string, unknown>> };
      change(r);
      assert.throws(() => parseReceipt(Buffer.from(JSON.stringify(r))), (err: Error) => err instanceof ReceiptError && message.test(err.message));
    };
    const tagged = JSON.parse(text).attached.findIndex((a: { tag?: string }) => a.tag) as number;
    refuse((r) => (r.attached[0]!.platform = 'x'), /attached\[0\] has an unknown field "platform"/);
    refuse((r) => delete r.attached[0]!.kind, /attached\[0\] has no field "kind"/);
    refuse((r) => (r.attached[0]!.kind = 'vex'), /attached\[0\]\.kind is not one of signature, attestation, sbom, other/);
    refuse((r) => (r.attached[0]!.repository = 'team/elsewhere'), /attached\[0\]\.repository team\/elsewhere is not the repository of any image/);
    refuse((r) => (r.attached[0]!.digest = `sha256:${'e'.repeat(64)}`), /attached\[0\]\.digest sha256:e+ is not among the blobs/);
    refuse((r) => (r.attached[0]!.subject = `sha256:${'e'.repeat(64)}`), /attached\[0\]\.subject sha256:e+ is not among the blobs/);
    refuse((r) => (r.attached[tagged]!.tag = `sha256-${b.other.slice(7)}.sig`), new RegExp(`attached\\[${tagged}\\]\\.tag "sha256-[a-f0-9]+\\.sig" is not cosign's`));
    refuse((r) => (r.attached[tagged]!.tag = 'latest'), /is not cosign's sha256-<hex>.sig, .att or .sbom of its subject/);
    refuse((r) => r.attached.push({ ...r.attached[0]! }), /attached\[2\]\.digest sha256:[a-f0-9]+ is listed twice for team\/app/);
    refuse((r) => ((r as unknown as { attached: unknown }).attached = {}), /attached is not a list/);
  });
});

describe('the reader refuses malformed attached entries', () => {
  /** bundle.json of `b` with `change` made to it, parsed. */
  const parseChanged = async (change: (i: BundleIndex & { attached: Array<Record<string, unknown>> }) => void) => {
    const i = JSON.parse(entry(await readTar(b.bundle), 'bundle.json').data.toString()) as BundleIndex & { attached: Array<Record<string, unknown>> };
    change(i);
    return parseIndex(Buffer.from(JSON.stringify(i)));
  };
  const refuses = async (change: Parameters<typeof parseChanged>[0], message: RegExp) => {
    await assert.rejects(parseChanged(change), (err: Error) => {
      assert.ok(err instanceof BundleError, err.message);
      assert.match(err.message, message);
      return true;
    });
  };
  const sigAt = () => b.index.attached!.findIndex((a) => a.tag !== undefined);

  it('accepts the bundle as written, an empty attached[] and none at all', async () => {
    assert.equal((await parseChanged(() => undefined)).attached?.length, 2);
    assert.deepEqual((await parseChanged((i) => (i.attached = []))).attached, []);
    assert.equal((await parseChanged((i) => delete (i as Partial<BundleIndex>).attached)).attached, undefined);
  });

  it('refuses each problem, naming the entry', async () => {
    const s = sigAt();
    const sig = new RegExp(`attached entry ${s} \\(${b.sig.digest} in example\\.com/team/app\\)`);
    await refuses((i) => ((i as unknown as { attached: unknown }).attached = {}), /attached is not a list/);
    await refuses((i) => ((i.attached as unknown[])[0] = 'x'), /attached entry 0 is not an object/);
    await refuses((i) => (i.attached[s]!.platform = 'linux'), new RegExp(`${sig.source} has an unknown field "platform"`));
    await refuses((i) => (i.attached[s]!.digest = 'sha256:XYZ'), /attached entry \d \(sha256:XYZ in example\.com\/team\/app\): digest is not a sha256 digest/);
    await refuses((i) => (i.attached[s]!.digest = `sha256:${'e'.repeat(64)}`), /its manifest is not one of the blobs/);
    await refuses((i) => (i.attached[s]!.subject = 'nope'), new RegExp(`${sig.source}: subject is not a sha256 digest`));
    await refuses((i) => (i.attached[s]!.subject = `sha256:${'e'.repeat(64)}`), new RegExp(`${sig.source}: its subject sha256:e+ is not one of the blobs`));
    await refuses((i) => (i.attached[s]!.subject = b.sig.digest), new RegExp(`${sig.source} is attached to itself`));
    await refuses((i) => (i.attached[s]!.repository = 'example.com/team/app:1'), /repository is not a normalized HOST\/PATH without tag or digest \(that would be example\.com\/team\/app\)/);
    await refuses((i) => (i.attached[s]!.repository = 'team/app'), /repository is not a normalized HOST\/PATH .*docker\.io\/team\/app/);
    await refuses((i) => (i.attached[s]!.repository = 'example.com/team/elsewhere'), /no image in the bundle is from example\.com\/team\/elsewhere/);
    await refuses((i) => (i.attached[s]!.repository = 'Bad Repo'), /repository: invalid image reference/);
    await refuses((i) => (i.attached[s]!.mediaType = 'application/vnd.dev.cosign.simplesigning.v1+json'), new RegExp(`${sig.source}: mediaType is not an OCI or Docker manifest or index`));
    await refuses((i) => (i.attached[s]!.artifactType = ''), /artifactType is not a media type/);
    await refuses((i) => ((i.attached[s] as Record<string, unknown>).kind = 'vex'), /kind is not one of signature, attestation, sbom, other/);
    await refuses((i) => (i.attached[s]!.tag = 'latest'), new RegExp(`${sig.source}: tag is not cosign's sha256-<hex>.sig, .att or .sbom`));
    await refuses((i) => (i.attached[s]!.tag = `sha256-${b.app.slice(7)}.sig.bak`), /tag is not cosign's/);
    await refuses((i) => (i.attached[s]!.tag = `sha256-${b.child.slice(7)}.sig`), new RegExp(`tag sha256-${b.child.slice(7)}\\.sig is not the tag of its subject ${b.app}`));
    await refuses((i) => (i.attached[s]!.size = -1), /size is not a size/);
    await refuses((i) => i.attached.push({ ...i.attached[s]! }), new RegExp(`attached entry 2 \\(${b.sig.digest} in example\\.com/team/app\\): tag example\\.com/team/app:sha256-[a-f0-9]+\\.sig is given to two entries`));
    await refuses((i) => i.attached.push({ ...i.attached[1 - s]! }), /attached entry 2 .* is listed twice/);
    await refuses((i) => i.attached.reverse(), /attached entry 1 .* is out of order \(attached\[\] is sorted by repository, subject, tag, digest\)/);
  });

  it('verify refuses an entry whose subject is not in its image, a referrer naming another subject, a wrong size', async () => {
    const resort = (i: Omit<BundleIndex, 'layout'>) => i.attached!.sort(compareAttached);
    const cases: Array<[string, (i: Omit<BundleIndex, 'layout'>, x: AttachedBundle) => void, (x: AttachedBundle) => RegExp]> = [
      ['elsewhere', (i) => { const r = i.attached!.find((a) => !a.tag)!; r.subject = i.images.find((m) => m.ref === OTHER)!.digest; resort(i); }, (x) => new RegExp(`attached ${x.referrer!.digest} \\(signature, a referrer in example\\.com/team/app\\): its subject ${x.other} is not a manifest of any image from example\\.com/team/app`)],
      ['renamed', (i) => { const r = i.attached!.find((a) => !a.tag)!; r.subject = i.images.find((m) => m.ref === APP)!.digest; resort(i); }, (x) => new RegExp(`attached ${x.referrer!.digest} .*: its manifest names the subject ${x.child}, not ${x.app}`)],
      ['sized', (i) => { i.attached!.find((a) => a.tag)!.size += 1; }, (x) => new RegExp(`attached ${x.sig.digest} \\(signature sha256-[a-f0-9]+\\.sig in example\\.com/team/app\\): bundle\\.json says it is ${x.sig.size} bytes, but its manifest and blobs are ${x.sig.size - 1}`)],
    ];
    // (x.sig is the entry as written: after the change.)
    for (const [name, mutate, message] of cases) {
      const x = await makeAttachedBundle(work, `bad-${name}`, { mutate: (i) => mutate(i, b) });
      const r = await runAirlock(['verify', x.bundle, '--pub', x.pub]);
      assert.equal(r.code, 1, `${name}: ${r.stdout}`);
      assert.match(r.stderr, message(x), name);
    }
  });
});

describe('unpack of a bundle with attached manifests', () => {
  let target: TestRegistry | undefined;
  after(async () => target?.stop());

  it('verifies them with the rest and pushes every image and what is attached; the receipt reads back', async () => {
    target = await startRegistry();
    await mkdir(path.join(work, 'files'));
    const receipt = path.join(work, 'unpack-receipt.json');
    const r = await runAirlock(['unpack', b.bundle, '--pub', b.pub, '--registry', target.host, '--files-dir', path.join(work, 'files'), '--receipt', receipt, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout) as { items: Array<{ status: string }> };
    assert.deepEqual(report.items.map((i) => i.status), ['pushed', 'pushed']);
    const back = parseReceipt(await readFile(receipt));
    assert.deepEqual(back.images.map((i) => i.target), [`${target.host}/team/app:1`, `${target.host}/team/other:1`]);
    // The attached manifests were pushed with their images (test/unpack-attached.test.ts): listed, with their blobs.
    assert.deepEqual(back.attached?.map((a) => a.digest).sort(), [b.sig.digest, b.referrer!.digest].sort());
    assert.ok(back.blobs.some((x) => x.digest === b.sig.digest));
  });

  it('build --base takes the bundle with attached manifests as a base: what it holds is external, placed with its image', async () => {
    assert.ok(target, 'the unpack above ran');
    const m = path.join(work, 'rebuild.yaml');
    await writeFile(m, `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: rebuild\n  version: "2"\nspec:\n  images:\n    - ${target.host}/team/app:1\n`);
    const out = path.join(work, 'rebuild.tar');
    const r = await runAirlock(['build', m, '-o', out, '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache-rebuild'), '--base', b.bundle]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /signature was not checked/, 'the base is signed with the same key: checked');
    const bj = JSON.parse(entry(await readTar(out), 'bundle.json').data.toString()) as BundleIndex;
    assert.equal(bj.images[0]?.digest, b.app);
    // Build finds at the target what unpack pushed there (the .sig by its tag, the referrer through the fallback index):
    // the image's 4 blobs and the 3 of each attached manifest, all held by the base.
    assert.deepEqual(bj.attached?.map((a) => a.digest).sort(), [b.sig.digest, b.referrer!.digest].sort());
    assert.ok(bj.blobs.length === 10 && bj.blobs.every((x) => x.external && x.from?.image === APP), JSON.stringify(bj.blobs));
  });
});
