// The bundle most unpack-side tests start from: a key pair and a build of the
// seeded upstream's manifest, in a fresh folder.
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock } from './cli.js';
import { makeTempDir } from './proc.js';
import type { Upstream } from './upstream.js';

export interface BuiltBundle {
  work: string;
  key: string;
  pub: string;
  bundle: string;
}

export async function buildUpstreamBundle(up: Upstream, prefix: string): Promise<BuiltBundle> {
  const work = await makeTempDir(prefix);
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  await writeFile(path.join(work, 'm.yaml'), up.manifest());
  const bundle = path.join(work, 'b.tar');
  const b = await runAirlock(['build', path.join(work, 'm.yaml'), '-o', bundle, '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache')]);
  assert.equal(b.code, 0, b.stderr);
  return { work, key: path.join(work, 'k.key'), pub: path.join(work, 'k.pub'), bundle };
}
