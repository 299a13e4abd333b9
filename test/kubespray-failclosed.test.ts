// airlock evaluates only the Jinja Kubespray's tables use; anything else in a
// table stops the build before any download (exit 2), naming the variable and
// the file, never a guess. Versions stay the strings Kubespray wrote.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cp, chmod, readFile, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { KUBESPRAY_SKIP, kubesprayList, kubesprayTag } from './support/kubespray.js';
import { runAirlock } from './support/cli.js';

const DOWNLOAD_YML = 'roles/kubespray_defaults/defaults/main/download.yml';
const CHECKSUMS_YML = 'roles/kubespray_defaults/vars/main/checksums.yml';

describe('Kubespray tables: the evaluator fails closed', { skip: KUBESPRAY_SKIP }, () => {
  let dir: string;
  let key: string;
  before(async () => {
    dir = await makeTempDir('airlock-kubespray-closed-');
    assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
    key = path.join(dir, 'k.key');
  });
  after(async () => removeTempDir(dir));

  /** A writable copy of the tag's tables with `edit` applied to one file. */
  async function copyWith(name: string, file: string, edit: (text: string) => string): Promise<string> {
    const copy = path.join(dir, name);
    await cp(kubesprayTag('v2.31.0'), copy, { recursive: true });
    await chmod(path.join(copy, file), 0o644);
    const text = await readFile(path.join(copy, file), 'utf8');
    const edited = edit(text);
    assert.notEqual(edited, text, 'the edit applies');
    await writeFile(path.join(copy, file), edited);
    return copy;
  }

  const cases: Array<{ what: string; edit: (t: string) => string; variable: string; reason: RegExp }> = [
    {
      what: 'an unknown filter',
      edit: (t) => t.replace('/bin/linux/{{ image_arch }}/kubelet"', '/bin/linux/{{ image_arch | to_uuid }}/kubelet"'),
      variable: 'kubelet_download_url',
      reason: /filter "to_uuid" is not supported/,
    },
    {
      what: 'a {% for %} block',
      edit: (t) => t.replace('kubectl_download_url: "{{ dl_k8s_io_url }}', 'kubectl_download_url: "{% for x in [1] %}{% endfor %}{{ dl_k8s_io_url }}'),
      variable: 'kubectl_download_url',
      reason: /\{% for %\} is not supported/,
    },
    {
      what: 'a lookup other than vars',
      edit: (t) => t.replace('runc_version: "{{ (runc_checksums', "runc_version: \"{{ lookup('env', 'RUNC') or (runc_checksums"),
      variable: 'runc_version',
      reason: /lookup\('env', 'RUNC'\) is not supported/,
    },
  ];
  for (const c of cases) {
    it(`${c.what} stops build and --list with exit 2 naming ${c.variable} and download.yml:LINE; no bundle is written`, async () => {
      const copy = await copyWith(c.variable, DOWNLOAD_YML, c.edit);
      const lineNo = (await readFile(path.join(copy, DOWNLOAD_YML), 'utf8')).split('\n').findIndex((l) => l.startsWith(`${c.variable}:`)) + 1;
      const listed = await kubesprayList(dir, `closed-${c.variable}`, { version: 'v2.31.0', source: copy });
      assert.equal(listed.code, 2, listed.stderr);
      const where = new RegExp(`${path.basename(copy)}/roles/kubespray_defaults/defaults/main/download\\.yml:${lineNo}:1: spec\\.kubespray: ${c.variable} \\(arch amd64\\): `);
      assert.match(listed.stderr, where);
      assert.match(listed.stderr, c.reason);
      const out = path.join(dir, `${c.variable}.tar`);
      const built = await runAirlock(['build', path.join(dir, `closed-${c.variable}.yaml`), '-o', out, '--key', key]);
      assert.equal(built.code, 2, built.stderr);
      assert.match(built.stderr, where);
      assert.equal(existsSync(out), false, 'no bundle');
    });
  }

  it('versions stay strings: a checksum key 1.20 is the version "1.20", not the float 1.2', async () => {
    // Kubespray quotes such keys today; written plainly, YAML 1.2's core schema would read a float.
    const copy = await copyWith('float', CHECKSUMS_YML, (t) => t.replace(/^( {2}amd64:\n)( {4}'1\.17': )/m, `$1    1.20: sha256:${'c'.repeat(64)}\n$2`));
    await writeFile(path.join(dir, 'crun.yml'), 'crun_enabled: true\n');
    const r = await kubesprayList(dir, 'float', { version: 'v2.31.0', source: copy, vars: ['crun.yml'] });
    assert.equal(r.code, 0, r.stderr);
    const crun = r.json?.items.find((i) => i.url?.includes('/containers/crun/'));
    assert.equal(crun?.url, 'https://github.com/containers/crun/releases/download/1.20/crun-1.20-linux-amd64');
    assert.deepEqual(crun?.checksum, { sha256: 'c'.repeat(64) });
  });
});
