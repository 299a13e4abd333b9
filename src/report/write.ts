// Writing a report's files: each whole or not at all (a temp file renamed),
// so a board never files half a page. Shared by `airlock report` and by
// unpack/sync --report DIR.
import path from 'node:path';
import { writeAtomic } from '../fsx/atomic.js';
import { mkdirs } from '../fsx/mkdirs.js';
import { cyclonedx } from './cyclonedx.js';
import { reportHtml } from './html.js';
import type { ReportModel } from './model.js';

export const REPORT_HTML = 'report.html';
export const REPORT_SBOM = 'sbom.cdx.json';

export async function writeHtml(file: string, m: ReportModel): Promise<void> {
  await writeAtomic(file, reportHtml(m));
}

export async function writeSbom(file: string, m: ReportModel): Promise<void> {
  await writeAtomic(file, JSON.stringify(cyclonedx(m), null, 2) + '\n');
}

/** unpack/sync --report DIR: DIR/report.html and DIR/sbom.cdx.json; returns the files written. */
export async function writeEvidence(dir: string, m: ReportModel): Promise<string[]> {
  await mkdirs(dir);
  const html = path.join(dir, REPORT_HTML);
  const sbom = path.join(dir, REPORT_SBOM);
  await writeHtml(html, m);
  await writeSbom(sbom, m);
  return [html, sbom];
}
