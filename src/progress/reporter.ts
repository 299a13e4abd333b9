// Progress on stderr: bars redrawn in place on a TTY, a line every few
// seconds otherwise (CI logs), nothing at all when quiet.
import { printable, printableLines } from '../util/printable.js';

export interface Transfer {
  advance(bytes: number): void;
  done(): void;
}

export interface Progress {
  /** A download or copy of known (or unknown: 0) size. */
  transfer(label: string, total: number): Transfer;
  /** Total bytes expected grows as references resolve. */
  addTotal(bytes: number): void;
  itemsTotal(n: number): void;
  itemDone(): void;
  log(line: string): void;
  finish(): void;
}

export const silentProgress: Progress = {
  transfer: () => ({ advance: () => undefined, done: () => undefined }),
  addTotal: () => undefined,
  itemsTotal: () => undefined,
  itemDone: () => undefined,
  log: () => undefined,
  finish: () => undefined,
};

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '--:--';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

function bar(fraction: number, width: number): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * width);
  return '#'.repeat(full) + '-'.repeat(width - full);
}

export function createProgress(label: string, stream: NodeJS.WriteStream = process.stderr, opts: { intervalMs?: number } = {}): Progress {
  const tty = stream.isTTY === true;
  const started = Date.now();
  const active = new Map<number, { label: string; done: number; total: number }>();
  let nextId = 0;
  let total = 0;
  let done = 0;
  let items = 0;
  let itemsDone = 0;
  let drawnLines = 0;

  const summary = () => {
    const secs = (Date.now() - started) / 1000;
    const rate = secs > 0 ? done / secs : 0;
    const eta = rate > 0 && total > done ? (total - done) / rate : NaN;
    const pct = total > 0 ? Math.floor((done / total) * 100) : 0;
    return { rate, eta, pct };
  };

  const draw = () => {
    const { rate, eta, pct } = summary();
    if (!tty) {
      stream.write(`${label}: ${formatBytes(done)} / ${formatBytes(total)} (${pct}%)${items ? `, items ${itemsDone}/${items}` : ''}, ${formatBytes(rate)}/s, ETA ${formatDuration(eta)}\n`);
      return;
    }
    const width = Math.max(40, (stream.columns ?? 80) - 1);
    const lines = [`${label} [${bar(total ? done / total : 0, 24)}] ${pct}% ${formatBytes(done)}/${formatBytes(total)} ${formatBytes(rate)}/s ETA ${formatDuration(eta)}${items ? ` items ${itemsDone}/${items}` : ''}`];
    for (const t of [...active.values()].slice(0, 6)) {
      const f = t.total ? t.done / t.total : 0;
      lines.push(`  [${bar(f, 16)}] ${formatBytes(t.done).padStart(9)} ${t.label}`);
    }
    if (active.size > 6) lines.push(`  … and ${active.size - 6} more`);
    let out = drawnLines > 0 ? `\x1b[${drawnLines}A` : '';
    for (const l of lines) out += `\x1b[2K${l.slice(0, width)}\n`;
    for (let i = lines.length; i < drawnLines; i++) out += '\x1b[2K\n';
    if (drawnLines > lines.length) out += `\x1b[${drawnLines - lines.length}A`;
    drawnLines = lines.length;
    stream.write(out);
  };

  const timer = setInterval(draw, opts.intervalMs ?? (tty ? 150 : 5000));
  timer.unref();

  return {
    transfer(l, t) {
      const id = nextId++;
      // Labels name registry content: hostile text, never raw to a terminal.
      const entry = { label: printable(l), done: 0, total: t };
      active.set(id, entry);
      return {
        advance(n) {
          entry.done += n;
          done += n;
        },
        done() {
          active.delete(id);
        },
      };
    },
    addTotal(n) {
      total += n;
    },
    itemsTotal(n) {
      items = n;
    },
    itemDone() {
      itemsDone++;
    },
    log(line) {
      if (tty && drawnLines > 0) {
        stream.write(`\x1b[${drawnLines}A\x1b[J`);
        drawnLines = 0;
      }
      stream.write(`${printableLines(line)}\n`);
    },
    finish() {
      clearInterval(timer);
      if (items > 0 || done > 0) draw();
    },
  };
}
