// --emit-config DIR: every config file for what the bundle holds, each written atomically.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CA_FILE, containerdHosts, kubesprayVars, KUBESPRAY_FILE } from './containerd.js';
import type { EmitContext } from './context.js';
import { Notes } from './notes.js';
import { readme } from './readme.js';
import { COMMON_FILE, SC_FILE, welkinConfig } from './welkin.js';

export async function emitConfig(dir: string, ctx: EmitContext): Promise<string[]> {
  const notes = new Notes();
  const files = new Map<string, string | Buffer>();
  const welkin = welkinConfig(ctx, notes);
  if (welkin.common) files.set(COMMON_FILE, welkin.common);
  if (welkin.sc) files.set(SC_FILE, welkin.sc);
  for (const [host, text] of containerdHosts(ctx)) files.set(`containerd/certs.d/${host}/hosts.toml`, text);
  if (ctx.caFile && [...files.keys()].some((f) => f.startsWith('containerd/'))) files.set(`containerd/${CA_FILE}`, await readFile(ctx.caFile));
  const kubespray = kubesprayVars(ctx, notes);
  if (kubespray) files.set(KUBESPRAY_FILE, kubespray);
  files.set('README.md', readme(ctx, [...files.keys()], notes));
  const written: string[] = [];
  for (const [rel, text] of files) {
    const full = path.join(dir, ...rel.split('/'));
    await mkdir(path.dirname(full), { recursive: true });
    const tmp = `${full}.airlock-partial`;
    await writeFile(tmp, text);
    await rename(tmp, full);
    written.push(full);
  }
  return written;
}
