// The Jinja subset of Kubespray's tables, evaluated as Ansible 2.14 does, on
// small tables written here (no Kubespray checkout needed): what Kubespray's
// tables rely on works, and what it does not know is an error, never a guess.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { loadTables, Scope } from '../src/presets/kubespray/tables.js';
import { TemplateError } from '../src/presets/kubespray/jinja.js';
import { facts } from '../src/presets/kubespray/downloads.js';

describe('Kubespray tables: the evaluator', () => {
  let dir: string;
  before(async () => {
    dir = await makeTempDir('airlock-jinja-');
  });
  after(async () => removeTempDir(dir));

  /** A checkout holding `defaults` as download.yml (the other tables empty), and an inventory file. */
  async function scope(defaults: string, inventory = '', arch = 'amd64', extra: Record<string, string> = {}): Promise<Scope> {
    const root = await makeTempDir('airlock-jinja-ks-');
    const d = path.join(root, 'roles/kubespray_defaults');
    await mkdir(path.join(d, 'defaults/main'), { recursive: true });
    await mkdir(path.join(d, 'vars/main'), { recursive: true });
    await writeFile(path.join(d, 'defaults/main/download.yml'), defaults);
    await writeFile(path.join(d, 'defaults/main/main.yml'), '---\n');
    await writeFile(path.join(d, 'vars/main/checksums.yml'), '---\n');
    await writeFile(path.join(d, 'vars/main/main.yml'), '---\n');
    await writeFile(path.join(root, 'inv.yml'), inventory || '---\n');
    const t = await loadTables({ source: root, inventory: [{ abs: path.join(root, 'inv.yml'), display: 'inv.yml' }], display: (r) => r });
    return new Scope(t, facts(arch), extra);
  }

  it('keeps YAML versions as written, key order as written, and evaluates Kubespray\'s idioms', async () => {
    const s = await scope(`
checks:
  amd64:
    '1.17': a
    1.20: b
    20240101: c
    1.16.1: d
first: "{{ (checks['amd64'] | dict2items)[0].key }}"
keys: "{{ checks['amd64'].keys() | list | join(',') }}"
below: "{{ (checks['amd64'].keys() | select('version', '1.19', '<'))[0] }}"
kube_version: 1.35.4
major: "{{ (kube_version | split('.'))[:-1] | join('.') }}"
next: "{{ ((kube_version | split('.'))[1] | int) + 1 }}"
maybe: "x-{{ 'static-' if static }}y"
static: false
coredns: "{{ 'v' if '1.12.4' is version('1.7.1', '>=') else '' }}1.12.4"
arch: >-
  {%- if ansible_architecture in groups -%}
  {{ groups[ansible_architecture] }}
  {%- else -%}
  {{ ansible_architecture }}
  {%- endif -%}
groups: {x86_64: amd64, aarch64: arm64}
enabled: "{{ plugin == 'calico' and not other }}"
plugin: calico
other: false
fallback: "{{ nothing | default('dflt') }} {{ nothing is defined }} {{ plugin ~ '-' ~ 1 }}"
via_lookup: "{{ lookup('vars', 'plug' + 'in') }}"
`);
    assert.equal(s.lookup('first'), '1.17');
    assert.equal(s.lookup('keys'), '1.17,1.20,20240101,1.16.1');
    assert.equal(s.lookup('below'), '1.17');
    assert.equal(s.lookup('major'), '1.35');
    assert.equal(s.lookup('next'), '36');
    assert.equal(s.lookup('maybe'), 'x-y');
    assert.equal(s.lookup('coredns'), 'v1.12.4');
    assert.equal(s.lookup('arch'), 'amd64');
    assert.equal(s.lookup('enabled'), true);
    assert.equal(s.lookup('fallback'), 'dflt False calico-1');
    assert.equal(s.lookup('via_lookup'), 'calico');
    assert.equal((await scope('arch: "{{ ansible_architecture }}"\n', '', 'arm64')).lookup('arch'), 'aarch64');
  });

  it('inventory vars win over defaults, -e style extras over all', async () => {
    const s = await scope('plugin: calico\nkube_version: 1.35.4\nurl: "{{ plugin }}/{{ kube_version }}"\n', 'plugin: cilium\n', 'amd64', { kube_version: '1.34.3' });
    assert.equal(s.lookup('url'), 'cilium/1.34.3');
  });

  for (const [what, template, reason] of [
    ['an unknown filter', '{{ x | to_uuid }}', /filter "to_uuid" is not supported/],
    ['a for loop', '{% for i in [1] %}{{ i }}{% endfor %}', /\{% for %\} is not supported/],
    ['an undefined variable', '{{ nothing }}/x', /nothing is undefined/],
    ['an unknown test', '{{ x is search("a") }}', /test "search" is not supported/],
    ['a missing key', "{{ m['b'] }}", /m\['b'\] is undefined/],
    ['arithmetic beyond + and -', '{{ 2 * 3 }}', /operator \* is not supported/],
    ['a filter with keyword arguments', "{{ x | default('a', boolean=true) }}", /keyword arguments \(boolean=\) are not supported/],
    ['a self reference', '{{ bad }}', /refers to itself through bad → bad/],
  ] as const) {
    it(`${what} is an error naming the variable and the file`, async () => {
      const s = await scope(`x: a\nm: {a: 1}\nbad: "${template.replace(/"/g, '\\"')}"\n`);
      assert.throws(
        () => s.lookup('bad'),
        (err: unknown) => err instanceof TemplateError && err.where.variable === 'bad' && err.where.file === 'roles/kubespray_defaults/defaults/main/download.yml' && err.where.line === 3 && reason.test(err.reason),
      );
    });
  }
});
