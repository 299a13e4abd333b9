// airlock serve with attached manifests (SPEC §9): the OCI 1.1 referrers API
// as distribution-spec "Listing Referrers" defines it, and cosign's tag-scheme
// tags, checked request by request with raw HTTP and with skopeo; a split
// bundle and a delta served with its base answer the same.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { Agent, request } from 'undici';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startServe, type Served } from './support/serve.js';
import { skopeoOk } from './support/skopeo.js';
import { flip, writeEntries } from './support/tamper.js';
import { entry, readTar } from './support/tarball.js';
import { makeAttachedBundle, OCI_INDEX, OCI_MANIFEST, SIGSTORE_BUNDLE, SPDX, type AttachedBundle } from './support/attachedbundle.js';
import { loadBase } from '../src/delta/base.js';
import { Http } from '../src/http/client.js';
import { RegistryClient } from '../src/registry/client.js';
import { discoverAttached } from '../src/registry/referrers.js';
import { compareAttached } from '../src/bundle/format.js';

const ANNOTATIONS = { 'dev.sigstore.bundle.predicateType': 'https://sigstore.dev/cosign/sign/v1', 'org.opencontainers.image.created': '2026-01-02T03:04:05Z' };
const agent = new Agent();
let work: string;
let b: AttachedBundle;
/** Every blob of the full bundle by digest: the bytes each served manifest must be. */
let blobs: Map<string, Buffer>;
let served: Served;

async function get(url: string, method: 'GET' | 'HEAD' = 'GET') {
  const res = await request(url, { method, dispatcher: agent });
  const body = method === 'HEAD' ? (await res.body.dump(), Buffer.alloc(0)) : Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, body };
}

/** The message of a serve that exited 1 at start; fails (and stops it) when it started. */
async function refusesToStart(bundle: string, pub: string, extra: string[] = []): Promise<string> {
  const s = await startServe(bundle, pub, extra).catch((err: Error) => err);
  if (!(s instanceof Error)) {
    await s.stop();
    return assert.fail(`airlock serve ${bundle} started`);
  }
  assert.match(s.message, /^airlock serve exited 1:/);
  return s.message;
}

const sha256 = (x: Buffer) => `sha256:${createHash('sha256').update(x).digest('hex')}`;
const emptyIndex = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] };

before(async () => {
  work = await makeTempDir('airlock-serve-attached-');
  b = await makeAttachedBundle(work, 'full', { referrerAnnotations: ANNOTATIONS, sbom: true });
  blobs = new Map((await readTar(b.bundle)).filter((e) => e.name.startsWith('blobs/sha256/')).map((e) => [`sha256:${e.name.slice(13)}`, e.data]));
  served = await startServe(b.bundle, b.pub);
});
after(async () => {
  await served?.stop();
  await agent.close();
  await removeTempDir(work);
});

describe('serve: the referrers API', () => {
  it('lists the referrer of an index child: 200, an OCI index, its descriptor from the manifest served by digest', async () => {
    for (const repo of ['team/app', 'example.com/team/app']) {
      const r = await get(`${served.registry}/v2/${repo}/referrers/${b.child}`);
      assert.equal(r.status, 200, r.body.toString());
      assert.equal(r.headers['content-type'], OCI_INDEX);
      assert.equal(r.headers['oci-filters-applied'], undefined);
      assert.equal(Number(r.headers['content-length']), r.body.length);
      const index = JSON.parse(r.body.toString()) as { manifests: Array<{ digest: string; size: number }> };
      assert.deepEqual(index, {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ mediaType: OCI_MANIFEST, digest: b.referrer!.digest, size: blobs.get(b.referrer!.digest)!.length, artifactType: SIGSTORE_BUNDLE, annotations: ANNOTATIONS }],
      });
      const m = await get(`${served.registry}/v2/${repo}/manifests/${index.manifests[0]!.digest}`);
      assert.equal(m.status, 200);
      assert.equal(m.headers['content-type'], OCI_MANIFEST);
      assert.equal(m.headers['docker-content-digest'], b.referrer!.digest);
      assert.equal(sha256(m.body), index.manifests[0]!.digest);
      assert.equal(m.body.length, index.manifests[0]!.size);
      assert.equal(JSON.parse(m.body.toString()).subject.digest, b.child);
      // Its blobs are in the repository.
      for (const l of [JSON.parse(m.body.toString()).config, ...JSON.parse(m.body.toString()).layers] as Array<{ digest: string }>) {
        const blob = await get(`${served.registry}/v2/${repo}/blobs/${l.digest}`);
        assert.equal(blob.status, 200, l.digest);
        assert.equal(sha256(blob.body), l.digest);
      }
      // The same bytes each time.
      assert.ok((await get(`${served.registry}/v2/${repo}/referrers/${b.child}`)).body.equals(r.body));
    }
  });

  it("names a referrer without artifactType by its config's media type (the SBOM on the top digest); the .sig has no subject and is no referrer", async () => {
    const r = await get(`${served.registry}/v2/team/app/referrers/${b.app}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], OCI_INDEX);
    assert.deepEqual(JSON.parse(r.body.toString()), {
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [{ mediaType: OCI_MANIFEST, digest: b.sbom!.digest, size: blobs.get(b.sbom!.digest)!.length, artifactType: SPDX }],
    });
  });

  it('answers 200 with an empty list for a digest nothing refers to, held or not', async () => {
    const unknown = `sha256:${'0'.repeat(64)}`;
    for (const [repo, digest] of [['team/other', b.other], ['team/app', unknown], ['team/app', b.referrer!.digest], ['team/other', b.child]] as const) {
      const r = await get(`${served.registry}/v2/${repo}/referrers/${digest}`);
      assert.equal(r.status, 200, `${repo} ${digest}`);
      assert.equal(r.headers['content-type'], OCI_INDEX);
      assert.deepEqual(JSON.parse(r.body.toString()), emptyIndex);
    }
  });

  it('filters on ?artifactType= and says so with OCI-Filters-Applied', async () => {
    const hit = await get(`${served.registry}/v2/team/app/referrers/${b.child}?artifactType=${encodeURIComponent(SIGSTORE_BUNDLE)}`);
    assert.equal(hit.status, 200);
    assert.equal(hit.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual((JSON.parse(hit.body.toString()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest), [b.referrer!.digest]);
    const miss = await get(`${served.registry}/v2/team/app/referrers/${b.child}?artifactType=${encodeURIComponent(SPDX)}`);
    assert.equal(miss.status, 200);
    assert.equal(miss.headers['content-type'], OCI_INDEX);
    assert.equal(miss.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(JSON.parse(miss.body.toString()), emptyIndex);
    const sbom = await get(`${served.registry}/v2/team/app/referrers/${b.app}?artifactType=${encodeURIComponent(SPDX)}`);
    assert.deepEqual((JSON.parse(sbom.body.toString()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest), [b.sbom!.digest]);
  });

  it('answers HEAD with the headers of GET and no body', async () => {
    const g = await get(`${served.registry}/v2/team/app/referrers/${b.child}`);
    const h = await get(`${served.registry}/v2/team/app/referrers/${b.child}`, 'HEAD');
    assert.equal(h.status, 200);
    assert.equal(h.headers['content-type'], OCI_INDEX);
    assert.equal(h.headers['content-length'], String(g.body.length));
    assert.equal(h.body.length, 0);
  });

  it('refuses an invalid digest with 400 DIGEST_INVALID, an unknown repository with 404 NAME_UNKNOWN', async () => {
    for (const bad of ['sha256:abc', 'latest', `sha256:${'A'.repeat(64)}`, `md5:${'0'.repeat(32)}`]) {
      const r = await get(`${served.registry}/v2/team/app/referrers/${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.headers['content-type'], 'application/json');
      assert.equal((JSON.parse(r.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'DIGEST_INVALID', bad);
    }
    const r = await get(`${served.registry}/v2/team/nothere/referrers/${b.child}`);
    assert.equal(r.status, 404);
    assert.equal((JSON.parse(r.body.toString()) as { errors: Array<{ code: string }> }).errors[0]?.code, 'NAME_UNKNOWN');
  });
});

describe('serve: tag-scheme tags', () => {
  it("lists the .sig tag with the image's (no fallback tag: serve has the referrers API)", async () => {
    for (const repo of ['team/app', 'example.com/team/app']) {
      const r = await get(`${served.registry}/v2/${repo}/tags/list`);
      assert.equal(r.status, 200);
      assert.deepEqual(JSON.parse(r.body.toString()), { name: repo, tags: ['1', b.sig.tag] });
    }
    assert.deepEqual(JSON.parse((await get(`${served.registry}/v2/team/other/tags/list`)).body.toString()), { name: 'team/other', tags: ['1'] });
  });

  it('serves the .sig manifest byte for byte by its tag and by digest, with its media type and digest', async () => {
    const want = blobs.get(b.sig.digest)!;
    for (const ref of [b.sig.tag!, b.sig.digest]) {
      const r = await get(`${served.registry}/v2/team/app/manifests/${ref}`);
      assert.equal(r.status, 200, ref);
      assert.ok(r.body.equals(want), ref);
      assert.equal(r.headers['content-type'], OCI_MANIFEST);
      assert.equal(r.headers['docker-content-digest'], b.sig.digest);
      const h = await get(`${served.registry}/v2/team/app/manifests/${ref}`, 'HEAD');
      assert.equal(h.headers['docker-content-digest'], b.sig.digest);
      assert.equal(h.headers['content-length'], String(want.length));
    }
    // Not in a repository it does not belong to.
    assert.equal((await get(`${served.registry}/v2/team/other/manifests/${b.sig.tag!}`)).status, 404);
    assert.equal((await get(`${served.registry}/v2/team/other/manifests/${b.sig.digest}`)).status, 404);
  });

  it('skopeo reads the .sig by its tag and the referrer by digest, byte for byte', async () => {
    const sig = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${served.host}/team/app:${b.sig.tag!}`]);
    assert.ok(sig.equals(blobs.get(b.sig.digest)!));
    const ref = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${served.host}/example.com/team/app@${b.referrer!.digest}`]);
    assert.ok(ref.equals(blobs.get(b.referrer!.digest)!));
  });
});

describe('serve as an upstream', () => {
  it("airlock's own discovery finds the API, the .sig by its tag and every referrer, byte for byte", async () => {
    const http = new Http({ retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 20 } });
    try {
      const client = new RegistryClient(served.host, http);
      const top = await discoverAttached(client, 'team/app', b.app);
      assert.equal(top.referrersVia, 'api');
      assert.deepEqual(top.warnings, []);
      assert.deepEqual(top.attached.map((a) => [a.digest, a.kind, a.tag]), [[b.sig.digest, 'signature', b.sig.tag], [b.sbom!.digest, 'sbom', undefined]]);
      const child = await discoverAttached(client, 'team/app', b.child);
      assert.deepEqual(child.attached.map((a) => [a.digest, a.kind, a.artifactType]), [[b.referrer!.digest, 'signature', SIGSTORE_BUNDLE]]);
      for (const a of [...top.attached, ...child.attached]) assert.ok(a.bytes.equals(blobs.get(a.digest)!), a.digest);
    } finally {
      await http.close();
    }
  });
});

describe('serve: split bundles and deltas', () => {
  it('a split bundle serves the referrers list and the .sig the same', async () => {
    const split = await makeAttachedBundle(work, 'split', { referrerAnnotations: ANNOTATIONS, sbom: true, splitSize: 700 });
    const s = await startServe(split.bundle, split.pub);
    try {
      const r = await get(`${s.registry}/v2/team/app/referrers/${b.child}`);
      assert.ok(r.body.equals((await get(`${served.registry}/v2/team/app/referrers/${b.child}`)).body));
      const sig = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${s.host}/team/app:${b.sig.tag!}`]);
      assert.ok(sig.equals(blobs.get(b.sig.digest)!));
    } finally {
      await s.stop();
    }
  });

  it('a delta served with its base serves the referrer it leaves out from the base, and its new .sig', async () => {
    const delta = await makeAttachedBundle(work, 'delta', { referrerAnnotations: ANNOTATIONS, sbom: true, bases: [await loadBase(b.bundle)], version: '2', signatureSeed: 'new' });
    const ext = new Map(delta.index.blobs.map((x) => [x.digest, x.external]));
    assert.equal(ext.get(b.referrer!.digest), true);
    assert.equal(ext.get(delta.sig.digest), undefined);
    const names = new Set((await readTar(delta.bundle)).map((e) => e.name));
    assert.ok(!names.has(`blobs/sha256/${b.referrer!.digest.slice(7)}`));
    const s = await startServe(delta.bundle, delta.pub, ['--base', b.bundle]);
    try {
      const r = await get(`${s.registry}/v2/team/app/referrers/${b.child}`);
      assert.equal(r.status, 200);
      assert.ok(r.body.equals((await get(`${served.registry}/v2/team/app/referrers/${b.child}`)).body));
      const m = await get(`${s.registry}/v2/team/app/manifests/${b.referrer!.digest}`);
      assert.ok(m.body.equals(blobs.get(b.referrer!.digest)!));
      assert.deepEqual(JSON.parse((await get(`${s.registry}/v2/team/app/tags/list`)).body.toString()).tags, ['1', delta.sig.tag]);
      const sig = await skopeoOk(['inspect', '--raw', '--tls-verify=false', `docker://${s.host}/team/app:${delta.sig.tag!}`]);
      assert.ok(sig.equals(entry(await readTar(delta.bundle), `blobs/sha256/${delta.sig.digest.slice(7)}`).data));
      assert.notEqual(delta.sig.digest, b.sig.digest);
    } finally {
      await s.stop();
    }
  });
});

describe('serve: attached manifests that are not what bundle.json signs', () => {
  it('does not start when a referrer names another subject than its entry (exit 1, naming it)', async () => {
    const x = await makeAttachedBundle(work, 'wrong-subject', {
      mutate: (i) => {
        i.attached!.find((e) => e.tag === undefined)!.subject = b.app;
        i.attached!.sort(compareAttached);
      },
    });
    assert.match(await refusesToStart(x.bundle, x.pub), new RegExp(`attached ${x.referrer!.digest} .*names the subject ${b.child}, not ${b.app}`));
  });

  it('does not start when a delta says a referrer it leaves to its base hangs off another subject than its manifest names', async () => {
    const x = await makeAttachedBundle(work, 'wrong-subject-delta', {
      referrerAnnotations: ANNOTATIONS,
      sbom: true,
      bases: [await loadBase(b.bundle)],
      version: '3',
      mutate: (i) => {
        i.attached!.find((e) => e.digest === b.referrer!.digest)!.subject = b.app;
        i.attached!.sort(compareAttached);
      },
    });
    assert.equal(x.index.blobs.find((e) => e.digest === b.referrer!.digest)?.external, true);
    assert.match(await refusesToStart(x.bundle, x.pub, ['--base', b.bundle]), new RegExp(`attached ${b.referrer!.digest} .*names the subject ${b.child}, not ${b.app}`));
  });

  it('does not start when an attached manifest in the tar does not hash to its signed digest', async () => {
    const bad = path.join(work, 'corrupt-referrer.tar');
    const name = `blobs/sha256/${b.referrer!.digest.slice(7)}`;
    await writeEntries(bad, (await readTar(b.bundle)).map((e) => ({ name: e.name, data: e.name === name ? flip(e.data) : e.data })));
    assert.match(await refusesToStart(bad, b.pub), new RegExp(`${b.referrer!.digest.slice(7)}.*(corrupt|does not match)`));
  });
});
