// `airlock report` (SPEC §10): the page rendered in a real headless Chromium
// (what the browser requests, logs and draws; the tables with scripts off),
// the SBOM checked against CycloneDX's own schema, hostile names from
// bundle.json shown as text, the 200-image scale, receipts, split bundles,
// --against, and unpack --report leaving the evidence of a transfer.
import assert from 'node:assert/strict';
import { copyFile, readFile, stat, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { makeAttachedBundle } from './support/attachedbundle.js';
import { printPdf, render, startChromium, type Browser } from './support/chromium.js';
import { runAirlock } from './support/cli.js';
import { cyclonedxErrors } from './support/cyclonedx-schema.js';
import { decodePng, inkOf } from './support/png.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry } from './support/registry.js';
import { makeScaleBundle, type ScaleBundle } from './support/scalebundle.js';
import { startUpstream } from './support/upstream.js';

const readJson = async (f: string) => JSON.parse(await readFile(f, 'utf8')) as Record<string, unknown>;

/** The page looks like something: a good share of its pixels differ from its background, in many colours (an empty page has none). */
function assertDrawn(png: Buffer, what: string): void {
  const ink = inkOf(decodePng(png));
  assert.ok(ink.ink > ink.pixels * 0.03 && ink.colours > 50, `${what}: the screenshot is (nearly) blank: ${JSON.stringify(ink)}`);
}

describe('airlock report', () => {
  let work: string;
  let browser: Browser;
  let scale: ScaleBundle;
  const hits: string[] = [];
  let server: ReturnType<typeof createServer>;
  let port = 0;

  before(async () => {
    work = await makeTempDir('airlock-report-');
    browser = await startChromium();
    // A server a page must never reach: anything that leaks from a page would land here.
    server = createServer((req, res) => {
      hits.push(req.url ?? '');
      res.end('gotcha');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
    scale = await makeScaleBundle(path.join(work, 'scale'), { images: 200 });
  });
  after(async () => {
    await browser?.close();
    await new Promise((resolve) => server?.close(resolve));
    if (work) await removeTempDir(work);
  });

  it('the detectors work: a request, a CSP violation and a blank page are each seen', async () => {
    const leaky = path.join(work, 'leaky.html');
    await writeFile(leaky, `<!DOCTYPE html><html><body><p>x</p><img src="http://127.0.0.1:${port}/leak"></body></html>`);
    const r = await render(browser, leaky);
    assert.ok(r.requests.some((u) => u.includes(`:${port}/leak`)), `the browser's Network events show the image request: ${JSON.stringify(r.requests)}`);
    assert.ok(hits.includes('/leak'), 'and the server saw it');
    // The same CSP as a report, and a script it does not allow: the browser logs the violation.
    const html = await readFile(await reportOf(scale.bundle, 'csp'), 'utf8');
    const bad = path.join(work, 'bad-script.html');
    await writeFile(bad, html.replace('</body>', '<script>document.title = "ran"</script></body>'));
    const b = await render(browser, bad);
    assert.ok(b.problems.some((p) => /Content Security Policy/i.test(p)), `the violation is logged: ${JSON.stringify(b.problems)}`);
    const blank = path.join(work, 'blank.html');
    await writeFile(blank, '<!DOCTYPE html><html><body></body></html>');
    const ink = inkOf(decodePng((await render(browser, blank)).screenshot));
    assert.equal(ink.ink, 0, 'an empty page has no ink');
  });

  async function reportOf(bundle: string, name: string, extra: string[] = []): Promise<string> {
    const out = path.join(work, `${name}.html`);
    const r = await runAirlock(['report', bundle, '-o', out, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return out;
  }

  it('a 200-image bundle: one page under 1 MB that Chromium renders with no request and no console error, every reference in it, the tables there with scripts off', async (t) => {
    const out = path.join(work, 'scale.html');
    const sbom = path.join(work, 'scale.cdx.json');
    const started = process.hrtime.bigint();
    const r = await runAirlock(['report', scale.bundle, '--pub', scale.pub, '-o', out, '--cyclonedx', sbom]);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    assert.equal(r.code, 0, r.stderr);
    const size = (await stat(out)).size;
    t.diagnostic(`200-image report: ${size} bytes of HTML, ${(await stat(sbom)).size} bytes of SBOM, airlock report ran ${ms.toFixed(0)} ms (process start included)`);
    assert.ok(size < 1024 * 1024, `the page is ${size} bytes`);

    const page = await render(browser, out);
    assert.deepEqual(page.requests, [], 'no request leaves the page');
    assert.deepEqual(page.problems, [], 'no console error or warning (a CSP violation would be one)');
    assertDrawn(page.screenshot, 'light');
    for (const i of scale.index.images) assert.ok(page.text.includes(i.ref), `${i.ref} is on the page`);
    assert.match(page.text, /verified\s*checked: bundle\.json's signature verifies with the key given/);
    assert.match(page.text, /from platform\.tar\.sha256, not recomputed/);
    assert.match(page.text, /ghcr\.io\/aquasecurity\/trivy-db:2: DB updated 2026-12-01T06:00:00.000Z/);
    assert.equal(page.filters, 3, 'the script ran: a filter box above each table');
    const rows = Object.fromEntries(page.tables.map((x) => [x.id, x.rows]));
    assert.deepEqual(rows, { 'images-table': 200, 'artifacts-table': 1, 'files-table': 2 });

    const dark = await render(browser, out, { dark: true });
    assert.deepEqual([dark.requests, dark.problems], [[], []]);
    assertDrawn(dark.screenshot, 'dark');
    assert.notDeepEqual(decodePng(dark.screenshot).data.subarray(0, 3), decodePng(page.screenshot).data.subarray(0, 3), 'dark has another background');
    await writeFile(path.join(work, 'scale.png'), page.screenshot);

    const off = await render(browser, out, { scripts: false });
    assert.equal(off.filters, 0, 'scripts were off');
    assert.deepEqual(Object.fromEntries(off.tables.map((x) => [x.id, x.rows])), rows, 'every table, every row, without the script');
    assert.deepEqual([off.requests, off.problems], [[], []]);

    // Printed as the page asks: A4 (595 × 842 points), not Chromium's default Letter.
    const pdf = (await printPdf(browser, out)).toString('latin1');
    const boxes = [...pdf.matchAll(/\/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]/g)].map((m) => [Math.round(Number(m[1])), Math.round(Number(m[2]))]);
    assert.ok(boxes.length > 1, 'several pages');
    assert.ok(boxes.every(([w, h]) => w === 595 && h === 842), `A4 pages: ${JSON.stringify(boxes.slice(0, 3))}`);

    assert.deepEqual(cyclonedxErrors(await readJson(sbom)), []);
  });

  it('the SBOM: the bundle as metadata.component, airlock as the tool, pkg:oci purls, files with SHA-256; a broken one fails the same schema check', async () => {
    const sbom = path.join(work, 'sbom.cdx.json');
    assert.equal((await runAirlock(['report', scale.bundle, '--cyclonedx', sbom])).code, 0);
    const doc = (await readJson(sbom)) as { metadata: { component: { name: string; properties: Array<{ name: string; value: string }> }; tools: { components: Array<{ name: string }> } }; components: Array<{ type: string; name: string; purl?: string; hashes: Array<{ alg: string; content: string }>; properties: Array<{ name: string; value: string }> }> };
    assert.deepEqual(cyclonedxErrors(doc), []);
    assert.equal(doc.metadata.component.name, 'platform');
    assert.equal(doc.metadata.tools.components[0]!.name, 'airlock');
    const first = scale.index.images[0]!;
    const c = doc.components.find((x) => x.purl?.includes(first.digest.slice(7)))!;
    assert.equal(c.type, 'container');
    assert.equal(c.purl, `pkg:oci/app-0@sha256%3A${first.digest.slice(7)}?arch=amd64&repository_url=docker.io/library/app-0&tag=v0.0`);
    assert.equal(doc.components.filter((x) => x.type === 'container').length, 200);
    const f = doc.components.find((x) => x.name === scale.index.files[0]!.path)!;
    assert.deepEqual([f.type, f.hashes], ['file', [{ alg: 'SHA-256', content: scale.index.files[0]!.sha256 }]]);
    assert.equal(doc.components.find((x) => x.name.endsWith('app-2'))!.properties.find((p) => p.name === 'airlock:signature:verdict')!.value, 'unsigned');

    // The same check catches what a broken writer would write.
    const broken = structuredClone(doc) as unknown as { components: Array<Record<string, unknown>>; metadata: Record<string, unknown> };
    broken.components[0]!.type = 'image';
    assert.ok(cyclonedxErrors(broken).some((e) => e.startsWith('/components/0/type')), 'an unknown component type');
    const badHash = structuredClone(doc) as unknown as { components: Array<{ hashes: Array<{ content: string }> }> };
    badHash.components[1]!.hashes[0]!.content = 'sha256:not-hex';
    assert.ok(cyclonedxErrors(badHash).some((e) => e.startsWith('/components/1/hashes/0/content')));
    const noFormat = structuredClone(doc) as unknown as Record<string, unknown>;
    delete noFormat.bomFormat;
    assert.notDeepEqual(cyclonedxErrors(noFormat), []);
  });

  it('hostile names from bundle.json (<script>, control characters, a 10 KB string, markup aimed at a server) render as inert text', async () => {
    const long = `v${'9'.repeat(10 * 1024)}`;
    const dir = path.join(work, 'hostile');
    const b = await makeScaleBundle(dir, {
      images: 3,
      name: 'evil',
      mutate: (i) => {
        i.name = `evil <script>alert(1)</script>`;
        i.version = `1\x1b[2J\u202eflipped\x00`;
        i.tool = long;
        i.images[0]!.platforms = [`linux/amd64"><img src="http://127.0.0.1:${port}/plat">`];
        i.files[0]!.source = `https://example.org/"><img src=http://127.0.0.1:${port}/src>`;
        i.signatures![0]!.signer = `</td><script>fetch("http://127.0.0.1:${port}/signer")</script>`;
      },
    });
    const out = path.join(work, 'hostile.html');
    const sbom = path.join(work, 'hostile.cdx.json');
    const r = await runAirlock(['report', b.bundle, '-o', out, '--cyclonedx', sbom]);
    assert.equal(r.code, 0, r.stderr);
    const page = await render(browser, out);
    assert.deepEqual(page.requests, []);
    assert.deepEqual(page.problems, [], 'nothing tried to run or load (a blocked attempt would be a CSP violation)');
    assert.deepEqual(hits.filter((u) => u !== '/leak'), [], 'the server the markup aims at was never asked');
    assert.ok(page.text.includes('evil <script>alert(1)</script>'), 'the name shows as the text it is');
    assert.ok(page.text.includes('1\\x1b[2J\\u{202e}flipped\\x00'), 'control and bidi characters shown escaped');
    assert.ok(page.text.includes(long), 'the 10 KB string is all there, as text');
    assert.ok(page.scrollWidth <= 1200, `it wraps rather than widen the page (${page.scrollWidth} px wide)`);
    assert.ok(page.text.includes(`fetch("http://127.0.0.1:${port}/signer")`));
    const scripts = await render(browser, out, { scripts: false });
    assert.deepEqual(scripts.tables.map((x) => x.rows), page.tables.map((x) => x.rows), 'the markup did not add or break a table');
    assert.deepEqual(cyclonedxErrors(await readJson(sbom)), [], 'the SBOM of hostile names is still valid');
  });

  it('reads bundle.json only: a bundle cut short after it still reports, the tar sha256 taken from BUNDLE.sha256', async () => {
    const cut = path.join(work, 'cut.tar');
    await copyFile(scale.bundle, cut);
    await copyFile(`${scale.bundle}.sha256`, `${cut}.sha256`);
    await writeFile(`${cut}.sha256`, (await readFile(`${cut}.sha256`, 'utf8')).replace('platform.tar', 'cut.tar'));
    await truncate(cut, 300 * 1024);
    const r = await runAirlock(['report', cut, '--pub', scale.pub, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as { source: { tarSha256: string; tarSha256Note: string }; signature: { state: string }; totals: { images: number } };
    const listed = (await readFile(`${scale.bundle}.sha256`, 'utf8')).split(' ')[0];
    assert.equal(m.source.tarSha256, listed, 'what BUNDLE.sha256 says, not what the cut file hashes to');
    assert.match(m.source.tarSha256Note, /not recomputed/);
    assert.deepEqual([m.signature.state, m.totals.images], ['verified', 200]);
  });

  it('without --pub the page says the signature was NOT checked; a wrong key fails; a split bundle shows its parts', async () => {
    const plain = await render(browser, await reportOf(scale.bundle, 'unchecked'));
    assert.match(plain.text, /NOT checked \(no --pub given\)/);
    const other = await makeAttachedBundle(path.join(work, 'other'), 'other');
    const wrong = await runAirlock(['report', scale.bundle, '--pub', other.pub, '--json']);
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /does not verify with the public key/);
    const split = await makeAttachedBundle(path.join(work, 'split'), 'split', { splitSize: 4096 });
    const r = await runAirlock(['report', `${split.bundle}.001`, '--pub', split.pub, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as { source: { parts: Array<{ name: string; sha256?: string }> } };
    assert.ok(m.source.parts.length > 1);
    assert.ok(m.source.parts.every((p) => /^[a-f0-9]{64}$/.test(p.sha256 ?? '')), 'each part\'s sha256 from split.tar.sha256');
  });

  it('usage: no output is exit 2; --pub with a bundle.json or receipt is exit 2; a missing source is exit 1', async () => {
    assert.equal((await runAirlock(['report', scale.bundle])).code, 2);
    const json = path.join(work, 'bundle.json');
    const r = await runAirlock(['report', scale.bundle, '--json']);
    await writeFile(json, '');
    // The bare bundle.json of the same bundle: the bytes bundle.json sha256 names.
    const sha = (JSON.parse(r.stdout) as { bundle: { bundleJsonSha256: string } }).bundle.bundleJsonSha256;
    const { BundleReader } = await import('../src/bundle/reader.js');
    const reader = await BundleReader.open(scale.bundle);
    await writeFile(json, reader.bundleJson);
    await reader.close();
    const bare = await runAirlock(['report', json, '--json']);
    assert.equal(bare.code, 0, bare.stderr);
    assert.equal((JSON.parse(bare.stdout) as { bundle: { bundleJsonSha256: string } }).bundle.bundleJsonSha256, sha);
    assert.equal((await runAirlock(['report', json, '--pub', scale.pub, '--json'])).code, 2);
    assert.equal((await runAirlock(['report', path.join(work, 'nope.tar'), '--json'])).code, 1);

    // SOURCE_DATE_EPOCH stands for now: the same bundle, the same bytes.
    const env = { ...process.env, SOURCE_DATE_EPOCH: '1764842400' };
    const twice = [];
    for (const n of [1, 2]) {
      const out = path.join(work, `epoch-${n}`);
      assert.equal((await runAirlock(['report', scale.bundle, '-o', `${out}.html`, '--cyclonedx', `${out}.json`], undefined, { env })).code, 0);
      twice.push([await readFile(`${out}.html`, 'utf8'), await readFile(`${out}.json`, 'utf8')]);
    }
    assert.deepEqual(twice[0], twice[1]);
    assert.equal((JSON.parse(twice[0]![1]!) as { metadata: { timestamp: string } }).metadata.timestamp, '2025-12-04T10:00:00Z');
  });

  it('--against: what was added, removed and changed, and the bytes that cross, as airlock diff counts them', async () => {
    const next = await makeScaleBundle(path.join(work, 'next'), { images: 201, seed: 'two' });
    const out = path.join(work, 'change.html');
    const r = await runAirlock(['report', next.bundle, '--against', scale.bundle, '-o', out, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as { against: { diff: { images: { added: unknown[]; changed: unknown[] }; carries: { bytes: number } } } };
    const d = JSON.parse((await runAirlock(['diff', scale.bundle, next.bundle, '--json'])).stdout) as { carries: { bytes: number }; images: { added: unknown[]; changed: unknown[] } };
    assert.equal(m.against.diff.carries.bytes, d.carries.bytes);
    assert.deepEqual([m.against.diff.images.added.length, m.against.diff.images.changed.length], [d.images.added.length, d.images.changed.length]);
    assert.deepEqual([d.images.added.length, d.images.changed.length], [1, 201]);
    const page = await render(browser, out);
    assert.deepEqual([page.requests, page.problems], [[], []]);
    assert.match(page.text, /What changed/);
    assert.match(page.text, /its signature is not checked \(only what it holds is compared\)/);
    assert.ok(page.text.includes(`(${d.carries.bytes} bytes) cross the gap`));
  });

  it('unpack --report DIR leaves report.html and sbom.cdx.json of what it put inside; a report of the receipt says what a receipt cannot tell', async () => {
    const reg = await startRegistry();
    try {
      const b = await makeAttachedBundle(path.join(work, 'unpack'), 'app', { extras: true });
      const files = await makeTempDir('airlock-report-files-');
      const evidence = path.join(work, 'evidence', 'transfer-1');
      const receipt = path.join(work, 'receipt.json');
      const u = await runAirlock(['unpack', b.bundle, '--pub', b.pub, '--registry', reg.host, '--files-dir', files, '--receipt', receipt, '--report', evidence]);
      assert.equal(u.code, 0, u.stderr);
      assert.match(u.stdout, /wrote .*transfer-1\/report\.html/);
      const page = await render(browser, path.join(evidence, 'report.html'));
      assert.deepEqual([page.requests, page.problems], [[], []]);
      assert.match(page.text, /checked by unpack/);
      assert.ok(page.text.includes(`${reg.host}/team/app:1`), 'where each image is inside');
      assert.deepEqual(cyclonedxErrors(await readJson(path.join(evidence, 'sbom.cdx.json'))), []);
      assert.match(page.text, /every byte was checked against it/);
      // Again: everything is in place, the tar is not read past bundle.json, and the page says so.
      const again = await runAirlock(['unpack', b.bundle, '--pub', b.pub, '--registry', reg.host, '--files-dir', files, '--report', evidence]);
      assert.equal(again.code, 0, again.stderr);
      assert.match((await render(browser, path.join(evidence, 'report.html'))).text, /the target already held every image and file it names/);

      const fromReceipt = path.join(work, 'receipt.html');
      const r = await runAirlock(['report', receipt, '-o', fromReceipt, '--cyclonedx', path.join(work, 'receipt.cdx.json')]);
      assert.equal(r.code, 0, r.stderr);
      const rp = await render(browser, fromReceipt);
      assert.deepEqual([rp.requests, rp.problems], [[], []]);
      assert.match(rp.text, /A receipt cannot tell: .*each image's size and platforms; the publishers' signature verdicts/);
      for (const ref of ['example.com/team/app:1', 'example.com/team/other:1']) assert.ok(rp.text.includes(ref));
      assert.deepEqual(cyclonedxErrors(await readJson(path.join(work, 'receipt.cdx.json'))), []);
      await removeTempDir(files);
    } finally {
      await reg.stop();
    }
  });

  it('sync --report DIR: the page and SBOM of what sync put inside, saying there was no bundle; a --report that is a file is exit 2 before anything', async () => {
    const up = await startUpstream();
    const reg = await startRegistry();
    try {
      const dir = path.join(work, 'sync');
      const files = await makeTempDir('airlock-report-sync-files-');
      const manifest = path.join(work, 'sync.yaml');
      await writeFile(manifest, up.manifest());
      const notDir = path.join(work, 'not-a-dir');
      await writeFile(notDir, 'x');
      const refused = await runAirlock(['sync', manifest, '--registry', reg.host, '--files-dir', files, '--cache', path.join(work, 'sync-cache'), '--report', notDir]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /--report .*not-a-dir: is not a folder/);
      assert.equal((await runAirlock(['unpack', scale.bundle, '--pub', scale.pub, '--registry', reg.host, '--files-dir', files, '--report', notDir])).code, 2);
      const catalog = (await (await fetch(`${reg.url}/v2/_catalog`)).json()) as { repositories: string[] };
      assert.deepEqual(catalog.repositories, [], 'nothing was pushed');

      const r = await runAirlock(['sync', manifest, '--registry', reg.host, '--files-dir', files, '--cache', path.join(work, 'sync-cache'), '--report', dir, '--json']);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual((JSON.parse(r.stdout) as { report: string[] }).report, [path.join(dir, 'report.html'), path.join(dir, 'sbom.cdx.json')]);
      const page = await render(browser, path.join(dir, 'report.html'));
      assert.deepEqual([page.requests, page.problems], [[], []]);
      assert.match(page.text, /no bundle: sync fetched from upstream and pushed directly/);
      assert.ok(page.text.includes(up.opensearch.landing), 'the files it put');
      assert.ok(page.text.includes(`${reg.host}/`), 'where the images are inside');
      assert.deepEqual(cyclonedxErrors(await readJson(path.join(dir, 'sbom.cdx.json'))), []);
      await removeTempDir(files);
    } finally {
      await reg.stop();
      await up.stop();
    }
  });

  it('a delta: its bases and the bytes they hold are on the page and in the SBOM', async () => {
    const dir = path.join(work, 'delta');
    const base = await makeAttachedBundle(dir, 'base');
    const { loadBase } = await import('../src/delta/base.js');
    const delta = await makeAttachedBundle(dir, 'delta', { appSeed: 'v2', version: '2', bases: [await loadBase(base.bundle)] });
    const out = path.join(work, 'delta.html');
    const sbom = path.join(work, 'delta.cdx.json');
    const r = await runAirlock(['report', delta.bundle, '--pub', delta.pub, '-o', out, '--cyclonedx', sbom, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as { bases: Array<{ name: string; sha256: string }>; totals: { externalBytes: number } };
    assert.equal(m.bases[0]!.name, 'base');
    assert.ok(m.totals.externalBytes > 0);
    const page = await render(browser, out);
    assert.deepEqual([page.requests, page.problems], [[], []]);
    assert.match(page.text, /Bases of this delta \(1\)/);
    assert.ok(page.text.includes(m.bases[0]!.sha256));
    assert.ok(page.tables.some((x) => x.id === 'bases-table' && x.rows === 1));
    const doc = (await readJson(sbom)) as { metadata: { component: { properties: Array<{ name: string; value: string }> } } };
    assert.deepEqual(cyclonedxErrors(doc), []);
    assert.ok(doc.metadata.component.properties.some((p) => p.name === 'airlock:base' && p.value.includes(m.bases[0]!.sha256)));
  });
});
