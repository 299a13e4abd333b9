// The one place the report page is drawn (SPEC §10): one self-contained HTML
// file for a change board. Nothing on it asks for anything: the stylesheet and
// the small sorting/filtering script are inline, allowed by their hashes in a
// Content-Security-Policy that refuses everything else (no 'unsafe-inline', so
// even markup that slipped through could run nothing and load nothing); the
// pictures are inline SVG. Every table is in the HTML itself, so the page reads
// the same with scripts off and prints to A4. Every string from the source
// goes through htmlText: names come from upstream registries.
import { createHash } from 'node:crypto';
import { VERDICT_KINDS } from '../bundle/format.js';
import { describeDb } from '../bundle/trivydb.js';
import { htmlText } from '../emit/escape.js';
import { formatBytes } from '../progress/reporter.js';
import type { ReportFile, ReportImage, ReportModel } from './model.js';
import { barChart } from './svg.js';

const e = htmlText;

const CSS = `
:root{color-scheme:light dark;--bg:#fff;--fg:#1b1f24;--muted:#59636e;--line:#d1d9e0;--head:#f6f8fa;--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--info:#0969da;
--c0:#0969da;--c1:#1a7f37;--c2:#8250df;--c3:#bf3989;--c4:#9a6700;--c5:#57606a}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--head:#151b23;--ok:#3fb950;--warn:#d29922;--bad:#f85149;--info:#4493f8;
--c0:#4493f8;--c1:#3fb950;--c2:#ab7df8;--c3:#db61a2;--c4:#d29922;--c5:#9198a1}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1200px;padding:24px;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.sub,.note{color:var(--muted)}.note{font-size:12.5px;margin:6px 0}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
td,li,p{overflow-wrap:break-word}
/* What comes from upstream may be one unbroken 10 KB token: it wraps anywhere rather than widen the page. */
h1,dd,code,.note,td.wrap{overflow-wrap:anywhere}
dl.summary{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:4px 16px;margin:12px 0}
dl.summary dt{color:var(--muted)}dl.summary dd{margin:0}
.badge{display:inline-block;white-space:nowrap;padding:0 7px;border-radius:10px;font-size:12px;font-weight:600;border:1px solid currentColor}
.ok{color:var(--ok)}.warn{color:var(--warn)}.bad{color:var(--bad)}.info{color:var(--info)}
.chips{display:flex;flex-wrap:wrap;gap:8px;margin:4px 0}
.chip{border:1px solid var(--line);border-radius:6px;padding:6px 10px;min-width:96px}
.chip b{display:block;font-size:20px}
.charts{display:flex;flex-wrap:wrap;gap:16px}
.charts figure{margin:0;flex:1 1 520px}.charts figcaption{font-weight:600;margin-bottom:4px}
svg.chart{max-width:100%;height:auto}
.chart-label,.chart-value{fill:var(--fg);font-size:12px;font-family:system-ui,sans-serif}
.chart-bar-0{fill:var(--c0)}.chart-bar-1{fill:var(--c1)}.chart-bar-2{fill:var(--c2)}.chart-bar-3{fill:var(--c3)}.chart-bar-4{fill:var(--c4)}.chart-bar-5{fill:var(--c5)}
table{border-collapse:collapse;width:100%;margin:6px 0 12px}
th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}
td.num,th.num{text-align:right;white-space:nowrap}
th button{all:inherit;cursor:pointer;padding:0;border:0;background:none}
th button::after{content:" \\2195";color:var(--muted)}
input.filter{margin:4px 0;padding:4px 8px;width:min(100%,360px);border:1px solid var(--line);border-radius:6px;background:var(--bg);color:var(--fg)}
tr.hidden{display:none}
ul.compact{margin:4px 0;padding-left:20px}
footer{margin-top:32px;color:var(--muted);font-size:12px}
@media print{
@page{size:A4;margin:12mm}
:root{--bg:#fff;--fg:#000;--muted:#444;--line:#999;--head:#eee}
body{padding:0;max-width:none;font-size:10pt;background:#fff;color:#000}
input.filter,th button::after{display:none}
h2{break-after:avoid}tr,figure,.chip{break-inside:avoid}
thead{display:table-header-group}
}
`;

// Sorting (click a column head) and filtering (a box above each table), added by the script
// itself: without it the page is the same tables, unsorted and unfiltered.
const SCRIPT = `
(function(){
  var tables=document.querySelectorAll('table[data-sortable]');
  for(var t=0;t<tables.length;t++)(function(table){
    var body=table.tBodies[0];if(!body)return;
    var input=document.createElement('input');
    input.type='search';input.className='filter';input.placeholder='Filter these rows';
    input.setAttribute('aria-label','Filter the rows of the table below');
    table.parentNode.insertBefore(input,table);
    input.addEventListener('input',function(){
      var q=input.value.toLowerCase();
      for(var r=0;r<body.rows.length;r++){var row=body.rows[r];row.classList.toggle('hidden',q!==''&&row.textContent.toLowerCase().indexOf(q)<0);}
    });
    var heads=table.tHead?table.tHead.rows[0].cells:[];
    for(var h=0;h<heads.length;h++)(function(th,col){
      var b=document.createElement('button');b.type='button';
      while(th.firstChild)b.appendChild(th.firstChild);th.appendChild(b);
      var asc=true;
      b.addEventListener('click',function(){
        var rows=Array.prototype.slice.call(body.rows);
        var key=function(row){var c=row.cells[col];if(!c)return '';var s=c.getAttribute('data-sort');return s!==null?Number(s):c.textContent.toLowerCase();};
        rows.sort(function(x,y){var a=key(x),z=key(y);return (a<z?-1:a>z?1:0)*(asc?1:-1);});
        asc=!asc;
        for(var i=0;i<rows.length;i++)body.appendChild(rows[i]);
      });
    })(heads[h],h);
  })(tables[t]);
})();
`;

const hash = (s: string) => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** The Content-Security-Policy the page carries: its own stylesheet and script, by hash; nothing else at all. */
export function contentSecurityPolicy(): string {
  return `default-src 'none'; style-src ${hash(CSS)}; script-src ${hash(SCRIPT)}; img-src 'none'; font-src 'none'; connect-src 'none'; base-uri 'none'; form-action 'none'`;
}

const size = (n: number | undefined) => (n === undefined ? '<td class="num" data-sort="-1">unknown</td>' : `<td class="num" data-sort="${n}" title="${n} bytes">${e(formatBytes(n))}</td>`);
const mono = (s: string) => `<code>${e(s)}</code>`;

function table(id: string, heads: string[], rows: string[], numeric: number[] = []): string {
  if (rows.length === 0) return '<p class="note">none</p>';
  const th = heads.map((h, i) => `<th${numeric.includes(i) ? ' class="num"' : ''}>${e(h)}</th>`).join('');
  return `<table id="${id}" data-sortable><thead><tr>${th}</tr></thead><tbody>${rows.map((r) => `<tr>${r}</tr>`).join('')}</tbody></table>`;
}

function verdictCell(i: ReportImage, m: ReportModel): string {
  const v = i.verdict;
  if (!v) return `<td>${m.verdicts ? 'no verdict' : '<span class="note">no policy</span>'}</td><td></td>`;
  const cls = v.verdict === 'verified' ? 'ok' : v.verdict === 'failed' ? 'bad' : v.verdict === 'skipped' ? 'info' : 'warn';
  const why = v.reasons?.length ? `<div class="note">${e(v.reasons.join('; '))}</div>` : '';
  const rule = v.rule === 'default' ? 'default rule' : `rule ${v.rule}`;
  return `<td data-sort="${VERDICT_KINDS.indexOf(v.verdict)}"><span class="badge ${cls}">${e(v.verdict)}</span> <span class="note">${e(`${rule}, ${v.mode}`)}</span>${why}</td><td>${v.signer ? mono(v.signer) : ''}${v.signedAt ? `<div class="note">signed ${e(v.signedAt)}</div>` : ''}</td>`;
}

function attachedCell(i: ReportImage): string {
  if (i.attached.length === 0) return '<td></td>';
  const counts = new Map<string, number>();
  for (const a of i.attached) counts.set(`${a.kind} (${a.via})`, (counts.get(`${a.kind} (${a.via})`) ?? 0) + 1);
  return `<td>${[...counts].map(([k, n]) => e(n > 1 ? `${n} × ${k}` : k)).join('<br>')}</td>`;
}

function imageRow(i: ReportImage, m: ReportModel, withTarget: boolean): string {
  const digest = `${mono(i.digest)}${i.upstreamDigest ? `<div class="note">upstream ${mono(i.upstreamDigest)}</div>` : ''}`;
  const platforms = i.platforms === undefined ? '<span class="note">unknown</span>' : i.platforms.length ? e(i.platforms.join(', ')) : '<span class="note">not told</span>';
  const role = i.kind === 'artifact' ? `<td>${e(i.role ?? 'artifact')}</td>` : '';
  const target = withTarget ? `<td>${i.target ? mono(i.target) : ''}</td>` : '';
  return `<td>${mono(i.ref)}</td>${role}<td>${digest}</td>${i.kind === 'image' ? `<td class="wrap">${platforms}</td>` : ''}${size(i.size)}${verdictCell(i, m)}${attachedCell(i)}${target}`;
}

function fileRow(f: ReportFile): string {
  return `<td>${mono(f.path)}${f.external ? '<div class="note">held by a base (delta)</div>' : ''}</td><td>${e(f.role ?? '')}</td>${size(f.size)}<td>${mono(f.sha256)}</td><td>${f.source !== undefined ? mono(f.source) : '<span class="note">unknown</span>'}</td>`;
}

function signatureBadge(m: ReportModel): string {
  const s = m.signature;
  const [cls, word] = s.state === 'verified' ? ['ok', 'verified'] : s.state === 'unsigned' ? ['bad', 'not signed'] : s.state === 'not-checked' ? ['warn', 'NOT checked'] : ['warn', 'nothing to check'];
  return `<span class="badge ${cls}">${word}</span> ${e(s.text)}`;
}

function summary(m: ReportModel): string {
  const b = m.bundle;
  const s = m.source;
  const rows: Array<[string, string]> = [];
  const what = { tar: 'bundle', 'bundle.json': 'bare bundle.json', receipt: 'receipt', unpack: 'bundle, as unpack put it inside', sync: 'manifest, as sync put it inside (no bundle)' }[s.form];
  rows.push(['Source', `${mono(s.file)} <span class="note">(${e(what)})</span>`]);
  rows.push(['Bundle', `<b>${e(b.name)}</b>${b.version ? ` ${e(b.version)}` : ''}`]);
  rows.push(['Created', `${e(b.created)}${b.builtBy ? ` <span class="note">by ${e(b.builtBy)}</span>` : ''}`]);
  rows.push(['Signature', signatureBadge(m)]);
  if (m.signature.fingerprint) rows.push(['Signer fingerprint', mono(m.signature.fingerprint)]);
  rows.push(['bundle.json sha256', b.bundleJsonSha256 ? mono(b.bundleJsonSha256) : '<span class="note">none: nothing was bundled</span>']);
  if (b.receiptSha256) rows.push(['Receipt sha256', mono(b.receiptSha256)]);
  if (s.parts) {
    if (s.tarSha256) rows.push(['Bundle (tar) sha256', `${mono(s.tarSha256)} <span class="note">${e(s.tarSha256Note ?? '')}</span>`]);
    else if (s.parts.length === 1) rows.push(['Bundle (tar) sha256', `<span class="note">${e(s.tarSha256Note ?? '')}</span>`]);
    rows.push(['Bundle size', `${e(formatBytes(s.size ?? 0))} <span class="note">(${s.size} bytes${s.parts.length > 1 ? ` in ${s.parts.length} parts` : ''})</span>`]);
    if (s.parts.length > 1) {
      rows.push(['Parts', `<ul class="compact">${s.parts.map((p) => `<li>${mono(p.name)} ${e(formatBytes(p.size))}${p.sha256 ? ` sha256 ${mono(p.sha256)}` : ''}</li>`).join('')}</ul><span class="note">${e(s.tarSha256Note ?? '')}</span>`]);
    }
  }
  if (m.target) rows.push(['Inside', `${mono(m.target.registry)} <span class="note">(${e(m.target.layout)} layout)</span>`]);
  const t = m.totals;
  const n = (count: number, one: string, many = `${one}s`) => `${count} ${count === 1 ? one : many}`;
  rows.push(['Holds', e(`${n(t.images, 'image')}, ${n(t.artifacts, 'artifact')}, ${n(t.files, 'file')}, ${n(t.attached, 'signature/attestation/SBOM', 'signatures/attestations/SBOMs')}; ${n(t.blobs, 'blob')}; ${formatBytes(t.bytes)} (${t.bytes} bytes)${t.externalBytes ? `, of which ${formatBytes(t.externalBytes)} held by the bases (a delta)` : ''}`)]);
  rows.push(['Trivy DB', trivy(m)]);
  if (m.bases.length) rows.push(['Delta of', e(m.bases.map((x) => `${x.kind} ${x.name}${x.version ? ` ${x.version}` : ''}`).join(', '))]);
  const dl = `<dl class="summary">${rows.map(([k, v]) => `<dt>${e(k)}</dt><dd>${v}</dd>`).join('')}</dl>`;
  const unknown = m.unknown.length ? `<p class="note">A receipt cannot tell: ${e(m.unknown.join('; '))}.</p>` : '';
  return `<section id="summary"><h2>Summary</h2>${dl}${verdictChips(m)}${unknown}</section>`;
}

function trivy(m: ReportModel): string {
  if (m.trivyDbs.length === 0) return `<span class="note">${m.source.form === 'receipt' ? 'a receipt does not tell' : 'no Trivy DB in this bundle'}</span>`;
  return m.trivyDbs.map((d) => `${mono(d.ref)}: ${e(describeDb(d))}`).join('<br>') + `<div class="note">ages as of ${e(m.asOf)}</div>`;
}

function verdictChips(m: ReportModel): string {
  if (!m.verdicts) {
    const why = m.source.form === 'receipt' ? 'a receipt does not record them' : 'the bundle was built without a signature policy, so the publishers\' signatures were not checked at build';
    return `<h3>Publisher signatures</h3><p class="note">No verdicts: ${e(why)}.</p>`;
  }
  const cls = { verified: 'ok', unsigned: 'warn', failed: 'bad', skipped: 'info' } as const;
  const chips = VERDICT_KINDS.map((k) => `<div class="chip ${m.verdicts![k] ? cls[k] : ''}"><b>${m.verdicts![k]}</b>${e(k)}</div>`).join('');
  const policy = m.policy ? `<p class="note">Policy ${mono(m.policy.name)} (${mono(m.policy.digest)}, with ${m.policy.files} key/trusted-root files), verdicts made at build; airlock verify --signatures checks them again.</p>` : '';
  return `<h3>Publisher signatures</h3><div class="chips">${chips}</div>${policy}`;
}

function change(m: ReportModel): string {
  if (!m.against) return '';
  const { old, diff: d } = m.against;
  const count = (x: { added: unknown[]; removed: unknown[]; changed: unknown[]; unchanged: number }) => `<td class="num">${x.added.length}</td><td class="num">${x.removed.length}</td><td class="num">${x.changed.length}</td><td class="num">${x.unchanged}</td>`;
  const counts = `<table><thead><tr><th></th><th class="num">added</th><th class="num">removed</th><th class="num">changed</th><th class="num">unchanged</th></tr></thead><tbody>
<tr><th>images and artifacts</th>${count(d.images)}</tr><tr><th>files</th>${count(d.files)}</tr><tr><th>signatures, attestations, SBOMs</th>${count(d.attached)}</tr></tbody></table>`;
  const c = d.carries;
  const crosses = `<p><b>${e(formatBytes(c.bytes))}</b> (${c.bytes} bytes) cross the gap that the old side does not hold: ${c.blobs.count} blobs (${e(formatBytes(c.blobs.bytes))}) and ${c.files.count} files (${e(formatBytes(c.files.bytes))}).</p>`;
  const imageRows = [
    ...d.images.added.map((i) => `<td><span class="badge ok">added</span></td><td>${mono(i.ref)}</td><td></td><td>${mono(i.digest)}</td>`),
    ...d.images.removed.map((i) => `<td><span class="badge bad">removed</span></td><td>${mono(i.ref)}</td><td>${mono(i.digest)}</td><td></td>`),
    ...d.images.changed.map((i) => `<td><span class="badge warn">changed</span></td><td>${mono(i.ref)}</td><td>${mono(i.oldDigest)}</td><td>${mono(i.newDigest)}</td>`),
  ];
  const fileRows = [
    ...d.files.added.map((f) => `<td><span class="badge ok">added</span></td><td>${mono(f.path)}</td><td></td><td>${mono(f.sha256)}</td>${size(f.size)}`),
    ...d.files.removed.map((f) => `<td><span class="badge bad">removed</span></td><td>${mono(f.path)}</td><td>${mono(f.sha256)}</td><td></td>${size(f.size)}`),
    ...d.files.changed.map((f) => `<td><span class="badge warn">changed</span></td><td>${mono(f.path)}</td><td>${mono(f.oldSha256)}</td><td>${mono(f.newSha256)}</td>${size(f.newSize)}`),
  ];
  const attachedRows = [
    ...d.attached.added.map((a) => `<td><span class="badge ok">added</span></td><td>${mono(a.image ?? a.repository)}</td><td>${e(a.kind)}</td><td></td><td>${mono(a.digest)}</td>`),
    ...d.attached.removed.map((a) => `<td><span class="badge bad">removed</span></td><td>${mono(a.image ?? a.repository)}</td><td>${e(a.kind)}</td><td>${mono(a.digest)}</td><td></td>`),
    ...d.attached.changed.map((a) => `<td><span class="badge warn">changed</span></td><td>${mono(a.image ?? a.repository)}</td><td>${e(a.kind)}</td><td>${mono(a.oldDigest)}</td><td>${mono(a.newDigest)}</td>`),
  ];
  return `<section id="change"><h2>What changed</h2>
<p class="note">Against ${mono(old.file)} (${e(old.form)}): ${e(`${old.name}${old.version ? ` ${old.version}` : ''}, created ${old.created}`)}, sha256 ${mono(old.sha256)}; ${old.form === 'receipt' ? 'receipts are not signed' : 'its signature is not checked (only what it holds is compared)'}.</p>
${counts}${crosses}
<h3>Images and artifacts</h3>${table('change-images', ['change', 'reference', 'old digest', 'new digest'], imageRows)}
<h3>Files</h3>${table('change-files', ['change', 'path', 'old sha256', 'new sha256', 'size'], fileRows, [4])}
<h3>Signatures, attestations, SBOMs</h3>${table('change-attached', ['change', 'image', 'kind', 'old digest', 'new digest'], attachedRows)}
</section>`;
}

export function reportHtml(m: ReportModel): string {
  const images = m.images.filter((i) => i.kind === 'image');
  const artifacts = m.images.filter((i) => i.kind === 'artifact');
  const withTarget = m.images.some((i) => i.target !== undefined);
  const targetHead = withTarget ? ['inside at'] : [];
  const title = `Transfer report: ${m.bundle.name}${m.bundle.version ? ` ${m.bundle.version}` : ''}`;
  const charts = `<section id="bytes"><h2>Where the bytes come from</h2><div class="charts">
<figure><figcaption>By upstream registry or file host</figcaption>${barChart('Bytes by upstream registry or file host', m.bytes.byRegistry)}</figure>
<figure><figcaption>By kind</figcaption>${barChart('Bytes by kind', m.bytes.byKind)}</figure></div><p class="note">${e(m.bytes.note)}</p></section>`;
  const bases = m.bases.length
    ? `<section id="bases"><h2>Bases of this delta (${m.bases.length})</h2><p class="note">What the inside must already hold: this bundle leaves out what they hold.</p>${table('bases-table', ['kind', 'name', 'version', 'sha256'], m.bases.map((x) => `<td>${e(x.kind)}</td><td>${e(x.name)}</td><td>${e(x.version)}</td><td>${mono(x.sha256)}</td>`))}</section>`
    : '';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy()}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="generator" content="${e(m.tool)}">
<title>${e(title)}</title>
<style>${CSS}</style>
</head><body>
<header><h1>${e(title)}</h1><p class="sub">Evidence for the change board, written ${e(m.asOf)} by ${e(m.tool)} from what the source's bundle.json says (no blob was read).</p></header>
<main>
${summary(m)}
${charts}
${change(m)}
<section id="images"><h2>Images (${images.length})</h2>
${table('images-table', ['reference', 'digest', 'platforms', 'size', 'signature', 'signer', 'attached', ...targetHead], images.map((i) => imageRow(i, m, withTarget)), [3])}</section>
<section id="artifacts"><h2>Artifacts (${artifacts.length})</h2>
${table('artifacts-table', ['reference', 'role', 'digest', 'size', 'signature', 'signer', 'attached', ...targetHead], artifacts.map((i) => imageRow(i, m, withTarget)), [3])}</section>
<section id="files"><h2>Files (${m.files.length})</h2>
${table('files-table', ['path', 'role', 'size', 'sha256', 'source'], m.files.map(fileRow), [2])}</section>
${bases}
</main>
<footer>${e(m.tool)} report format ${m.reportVersion}. Sizes in KiB/MiB/GiB (1024). The same facts: airlock report SOURCE --json; the inventory: --cyclonedx (CycloneDX 1.6).</footer>
<script>${SCRIPT}</script>
</body></html>
`;
}
