// `airlock images extract`: the union of image references in rendered YAML files.
import { READ_BOUNDS, readRegular } from '../fsx/safe.js';
import { normalizeReference, ReferenceError, shownReference } from '../oci/reference.js';
import { extractImagesFromText } from './images.js';
import type { Problem } from './problems.js';

export async function extractImages(files: readonly string[], opts: { normalize: boolean }): Promise<{ refs: string[]; problems: Problem[] }> {
  const refs = new Set<string>();
  const problems: Problem[] = [];
  for (const file of files) {
    const display = file === '-' ? '<stdin>' : file;
    let text: string;
    try {
      text = file === '-' ? await readStdin() : (await readRegular(file, { ...READ_BOUNDS.rendered, follow: true })).toString('utf8');
    } catch (err) {
      problems.push({ file: display, line: 1, col: 1, path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` });
      continue;
    }
    const found = extractImagesFromText(display, text);
    problems.push(...found.problems);
    for (const img of found.images) {
      if (!opts.normalize) {
        refs.add(img.value);
        continue;
      }
      try {
        refs.add(normalizeReference(img.value));
      } catch (err) {
        const reason = err instanceof ReferenceError ? err.reason : (err as Error).message;
        problems.push({ file: img.file, line: img.line, col: img.col, path: 'image', message: `invalid image reference "${shownReference(img.value)}": ${reason}` });
      }
    }
  }
  return { refs: [...refs].sort(), problems };
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
