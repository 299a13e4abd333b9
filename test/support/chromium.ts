// A real headless Chromium (Debian's `chromium`, installed by
// scripts/install-test-deps.sh), driven over the Chrome DevTools Protocol on
// --remote-debugging-pipe (fd 3 in, fd 4 out, NUL-separated JSON): no port to
// race for, no client library. Each browser gets its own temp profile and is
// stopped by its process group id.
import { spawn, type ChildProcess } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { makeTempDir, removeTempDir } from './proc.js';
import { requireBinary } from './tools.js';

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

export interface Browser {
  readonly pid: number;
  send<T = Record<string, unknown>>(method: string, params?: Record<string, unknown>, sessionId?: string): Promise<T>;
  /** Every event seen so far (and later ones, as they come). */
  readonly events: Message[];
  waitFor(method: string, sessionId: string, timeoutMs?: number): Promise<Message>;
  close(): Promise<void>;
}

export async function startChromium(): Promise<Browser> {
  const bin = requireBinary('chromium');
  const profile = await makeTempDir('airlock-chromium-');
  const child: ChildProcess = spawn(
    bin,
    [
      '--headless',
      '--remote-debugging-pipe',
      `--user-data-dir=${profile}`,
      // Tests run as root in containers, where Chromium's sandbox cannot start.
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-extensions',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--hide-scrollbars',
      '--mute-audio',
      'about:blank',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'], detached: true },
  );
  const pid = child.pid;
  if (pid === undefined) throw new Error(`could not start ${bin}`);
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-4000)));
  const input = child.stdio[3] as Writable;
  const output = child.stdio[4] as Readable;
  const events: Message[] = [];
  const pending = new Map<number, { resolve: (v: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  const waiters: Array<{ method: string; sessionId: string; resolve: (m: Message) => void }> = [];
  let buf = '';
  output.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let nul: number;
    while ((nul = buf.indexOf('\0')) >= 0) {
      const msg = JSON.parse(buf.slice(0, nul)) as Message;
      buf = buf.slice(nul + 1);
      if (msg.id !== undefined) {
        const p = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error) p?.reject(new Error(`CDP: ${msg.error.message}`));
        else p?.resolve(msg.result ?? {});
      } else {
        events.push(msg);
        for (let i = waiters.length - 1; i >= 0; i--) {
          const w = waiters[i]!;
          if (w.method === msg.method && w.sessionId === msg.sessionId) {
            waiters.splice(i, 1);
            w.resolve(msg);
          }
        }
      }
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => {
    for (const p of pending.values()) p.reject(new Error(`chromium exited: ${stderr}`));
    pending.clear();
  });
  let next = 1;
  const browser: Browser = {
    pid,
    events,
    send<T>(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<T> {
      const id = next++;
      return new Promise<T>((resolve, reject) => {
        pending.set(id, { resolve: resolve as (v: Record<string, unknown>) => void, reject });
        input.write(JSON.stringify({ id, method, params, ...(sessionId && { sessionId }) }) + '\0');
      });
    },
    waitFor(method: string, sessionId: string, timeoutMs = 30_000): Promise<Message> {
      const seen = events.find((e) => e.method === method && e.sessionId === sessionId);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no ${method} within ${timeoutMs} ms; chromium said: ${stderr}`)), timeoutMs);
        waiters.push({ method, sessionId, resolve: (m) => (clearTimeout(t), resolve(m)) });
      });
    },
    async close() {
      await browser.send('Browser.close').catch(() => undefined);
      const killer = setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }, 5000);
      await exited;
      clearTimeout(killer);
      await removeTempDir(profile);
    },
  };
  return browser;
}

export interface Rendered {
  /** Every URL the page asked for, its own document's excepted. */
  requests: string[];
  /** Console messages, exceptions and browser log entries at warning or error level (CSP violations among them). */
  problems: string[];
  /** document.body.innerText. */
  text: string;
  /** For each table: its id and its body's row count. */
  tables: Array<{ id: string; rows: number }>;
  /** A PNG of the viewport. */
  screenshot: Buffer;
  /** Whether the page's script ran (it adds a filter box above each sortable table). */
  filters: number;
  /** The page's width in CSS pixels: more than the viewport's means it scrolls sideways. */
  scrollWidth: number;
}

/** Opens `file` in a new tab (scripts on or off, light or dark), lets it load, and reports what the browser saw. */
export async function render(browser: Browser, file: string, opts: { scripts?: boolean; dark?: boolean; width?: number; height?: number } = {}): Promise<Rendered> {
  const { targetId } = await browser.send<{ targetId: string }>('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await browser.send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true });
  const s = (method: string, params?: Record<string, unknown>) => browser.send(method, params, sessionId);
  try {
    for (const d of ['Page', 'Network', 'Runtime', 'Log']) await s(`${d}.enable`);
    await s('Emulation.setDeviceMetricsOverride', { width: opts.width ?? 1200, height: opts.height ?? 900, deviceScaleFactor: 1, mobile: false });
    await s('Emulation.setEmulatedMedia', { features: [{ name: 'prefers-color-scheme', value: opts.dark ? 'dark' : 'light' }] });
    if (opts.scripts === false) await s('Emulation.setScriptExecutionDisabled', { value: true });
    const url = pathToFileURL(file).href;
    await s('Page.navigate', { url });
    await browser.waitFor('Page.loadEventFired', sessionId);
    const evaluate = async <T>(expression: string): Promise<T> => ((await s('Runtime.evaluate', { expression, returnByValue: true })) as { result: { value: T } }).result.value;
    const text = await evaluate<string>('document.body.innerText');
    const tables = await evaluate<Array<{ id: string; rows: number }>>('Array.from(document.querySelectorAll("table")).map(t => ({ id: t.id, rows: t.tBodies[0] ? t.tBodies[0].rows.length : 0 }))');
    const filters = await evaluate<number>('document.querySelectorAll("input.filter").length');
    const scrollWidth = await evaluate<number>('document.documentElement.scrollWidth');
    const { data } = await browser.send<{ data: string }>('Page.captureScreenshot', { format: 'png' }, sessionId);
    const mine = browser.events.filter((e) => e.sessionId === sessionId);
    const requests = mine.filter((e) => e.method === 'Network.requestWillBeSent').map((e) => (e.params!.request as { url: string }).url).filter((u) => u !== url);
    const problems = mine.flatMap((e) => {
      const p = e.params ?? {};
      if (e.method === 'Runtime.exceptionThrown') return [`exception: ${JSON.stringify(p.exceptionDetails)}`];
      if (e.method === 'Runtime.consoleAPICalled' && (p.type === 'error' || p.type === 'warning' || p.type === 'assert')) return [`console.${String(p.type)}: ${JSON.stringify(p.args)}`];
      const entry = p.entry as { level?: string; text?: string; source?: string } | undefined;
      if (e.method === 'Log.entryAdded' && (entry?.level === 'error' || entry?.level === 'warning')) return [`log ${entry.source}/${entry.level}: ${entry.text}`];
      return [];
    });
    return { requests, problems, text, tables, screenshot: Buffer.from(data, 'base64'), filters, scrollWidth };
  } finally {
    await browser.send('Target.closeTarget', { targetId }).catch(() => undefined);
  }
}

/** Prints `file` to PDF as the page asks (its CSS @page size), and returns the PDF. */
export async function printPdf(browser: Browser, file: string): Promise<Buffer> {
  const { targetId } = await browser.send<{ targetId: string }>('Target.createTarget', { url: 'about:blank' });
  const { sessionId } = await browser.send<{ sessionId: string }>('Target.attachToTarget', { targetId, flatten: true });
  try {
    await browser.send('Page.enable', {}, sessionId);
    await browser.send('Page.navigate', { url: pathToFileURL(file).href }, sessionId);
    await browser.waitFor('Page.loadEventFired', sessionId);
    const { data } = await browser.send<{ data: string }>('Page.printToPDF', { preferCSSPageSize: true }, sessionId);
    return Buffer.from(data, 'base64');
  } finally {
    await browser.send('Target.closeTarget', { targetId }).catch(() => undefined);
  }
}
