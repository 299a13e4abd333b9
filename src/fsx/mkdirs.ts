// `mkdir -p` that always ends. Node's own recursive mkdir (fs.mkdir with
// `recursive: true`, and module.enableCompileCache, which makes its folder the
// same way) spins at 100% CPU forever when a parent exists but cannot hold the
// new name: procfs answers ENOENT for any name made in it, and Node takes
// ENOENT to mean "make the parent first", which then exists, and so on
// (`node -e "fs.mkdirSync('/proc/x/y', {recursive: true})"` never returns on
// Node 24.21; bun had the same loop, oven-sh/bun#40600). `--cache /proc/x`
// hung a build that way. Here an ENOENT after the parent was made (or found)
// is final, and is thrown.
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';

const code = (err: unknown) => (err as NodeJS.ErrnoException).code;

export async function mkdirs(dir: string, mode?: number): Promise<void> {
  const made = await mkdir(dir, { mode }).then(
    () => true,
    async (err: unknown) => {
      if (code(err) === 'EEXIST' && (await stat(dir).catch(() => undefined))?.isDirectory()) return true;
      if (code(err) !== 'ENOENT' || path.dirname(dir) === dir) throw err;
      return false;
    },
  );
  if (made) return;
  await mkdirs(path.dirname(dir), mode);
  await mkdir(dir, { mode }).catch(async (err: unknown) => {
    if (!(code(err) === 'EEXIST' && (await stat(dir).catch(() => undefined))?.isDirectory())) throw err;
  });
}
