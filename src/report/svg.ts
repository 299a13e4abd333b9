// The report's pictures: horizontal bar charts drawn as inline SVG, so the
// page needs no image, font or script to show them. Colours come from the
// page's stylesheet (classes), not style attributes, which the page's
// Content-Security-Policy would refuse.
import { htmlText } from '../emit/escape.js';
import { formatBytes } from '../progress/reporter.js';
import type { Share } from './model.js';

const WIDTH = 640;
const ROW = 22;
const LABEL = 230;
const VALUE = 80;
/** More rows than this are summed into one "others" row: a chart of 200 registries says nothing. */
const MAX_ROWS = 10;
const MAX_LABEL = 34;

/** A bar per share, largest first (as given), with its size; `title` names the chart for screen readers. */
export function barChart(title: string, shares: readonly Share[]): string {
  const rows = shares.length > MAX_ROWS ? [...shares.slice(0, MAX_ROWS - 1), { label: `${shares.length - MAX_ROWS + 1} others`, bytes: shares.slice(MAX_ROWS - 1).reduce((n, s) => n + s.bytes, 0) }] : shares;
  const max = Math.max(1, ...rows.map((r) => r.bytes));
  const total = rows.reduce((n, r) => n + r.bytes, 0) || 1;
  const barSpace = WIDTH - LABEL - VALUE - 10;
  const height = Math.max(1, rows.length) * ROW + 4;
  const bars = rows.map((r, i) => {
    const y = i * ROW + 2;
    const w = Math.max(1, Math.round((r.bytes / max) * barSpace));
    const label = r.label.length > MAX_LABEL ? `${r.label.slice(0, MAX_LABEL - 1)}…` : r.label;
    const pct = ((r.bytes / total) * 100).toFixed(r.bytes / total < 0.1 ? 1 : 0);
    return (
      `<g><title>${htmlText(`${r.label}: ${formatBytes(r.bytes)} (${r.bytes} bytes, ${pct}%)`)}</title>` +
      `<text class="chart-label" x="${LABEL - 6}" y="${y + 15}" text-anchor="end">${htmlText(label)}</text>` +
      `<rect class="chart-bar chart-bar-${i % 6}" x="${LABEL}" y="${y + 3}" width="${w}" height="${ROW - 6}" rx="2"></rect>` +
      `<text class="chart-value" x="${LABEL + w + 6}" y="${y + 15}">${htmlText(formatBytes(r.bytes))}</text></g>`
    );
  });
  const empty = rows.length === 0 ? `<text class="chart-label" x="${LABEL}" y="16">nothing to draw</text>` : '';
  return `<svg class="chart" role="img" aria-label="${htmlText(title)}" viewBox="0 0 ${WIDTH} ${height}" width="${WIDTH}" height="${height}" xmlns="http://www.w3.org/2000/svg"><title>${htmlText(title)}</title>${bars.join('')}${empty}</svg>`;
}
