// Dev helper (not shipped): seeds the bench's 12 × 4 images into a long-lived registry and prints env lines.
import { writeFile } from 'node:fs/promises';
import { startRegistry } from '../test/support/registry.js';
import { makeLayer, Seeder } from '../test/support/seed.js';
const MB = 1024 * 1024;
const reg = await startRegistry();
const t = await startRegistry();
const seeder = new Seeder({ url: reg.url });
const bases = [await makeLayer('base-a', 8 * MB), await makeLayer('base-b', 8 * MB)];
const refs: string[] = [];
for (let i = 0; i < 12; i++) {
  const own = [await makeLayer(`img${i}-1`, 2 * MB), await makeLayer(`img${i}-2`, 3 * MB), await makeLayer(`img${i}-3`, 4 * MB)];
  await seeder.pushImage(`bench/app${i}`, 'v1', { layers: [bases[i % 2]!, ...own], format: 'oci' });
  refs.push(`${reg.host}/bench/app${i}:v1`);
}
await seeder.close();
await writeFile('/tmp/perf/m.yaml', `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: bench}\nspec:\n  images:\n${refs.map((r) => `    - ${r}\n`).join('')}`);
console.log(`SRC=${reg.host} TGT=${t.host} TGTDATA=${t.dataDir} PIDS=${reg.pid},${t.pid}`);
setInterval(() => {}, 1 << 30);
