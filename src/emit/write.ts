// --emit-config DIR: every config file for what the bundle holds, each written
// atomically (src/fsx/atomic.ts) and only inside DIR.
import path from 'node:path';
import { Notes, readmeFiles } from './readme.js';
import { containerdHosts, kubesprayMirrors } from './containerd.js';
import type { EmitContext } from './context.js';
import { KUBESPRAY_OFFLINE_FILE, kubesprayOffline } from './kubespray.js';
import { fileServerCaWarning, welkinCommonConfig, welkinScConfig } from './welkin.js';
import { writeAtomic } from '../fsx/atomic.js';
import { mkdirs } from '../fsx/mkdirs.js';
import { resolveInside } from '../fsx/safe.js';
import { printable } from '../util/printable.js';

/** `log` gets the few warnings worth a line on stderr (escaped); the README holds them all. */
export async function emitConfig(dir: string, ctx: EmitContext, log?: (line: string) => void): Promise<string[]> {
  const notes = new Notes();
  fileServerCaWarning(ctx, notes);
  const files = new Map<string, string>();
  const common = welkinCommonConfig(ctx, notes);
  if (common) files.set('welkin/common-config.yaml', common);
  const sc = welkinScConfig(ctx, notes);
  if (sc) files.set('welkin/sc-config.yaml', sc);
  for (const [host, text] of containerdHosts(ctx)) files.set(`containerd/certs.d/${host}/hosts.toml`, text);
  const kubespray = kubesprayMirrors(ctx, notes);
  if (kubespray) files.set('kubespray/containerd-mirrors.yaml', kubespray);
  const offline = kubesprayOffline(ctx, notes);
  if (offline) files.set(KUBESPRAY_OFFLINE_FILE, offline);
  for (const [rel, text] of await readmeFiles(ctx, [...files.keys()], notes)) files.set(rel, text);
  const written: string[] = [];
  await mkdirs(dir);
  for (const [rel, text] of files) {
    // Inside DIR (a link in it to a folder elsewhere is refused); a link or FIFO at the name itself is replaced.
    const full = await resolveInside(dir, rel, { create: true, what: `config file ${rel}` });
    await writeAtomic(full, text);
    written.push(path.join(dir, ...rel.split('/')));
  }
  for (const line of notes.console) log?.(printable(line));
  return written;
}
