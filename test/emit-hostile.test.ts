// A bundle another tool wrote and signed (the key is trusted, the text is not):
// bundle.json's name and version hold line breaks (the ones YAML, PyYAML and
// TOML read) and Markdown, its references Markdown's `_`. unpack --emit-config
// must write files that parse to exactly the keys the same bundle with plain
// names gives, and a README that shows those names as text, not structure.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { sign } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { parse as parseYaml } from 'yaml';
import { runAirlock } from './support/cli.js';
import { buildUpstreamBundle } from './support/fixture.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { rewrite } from './support/tamper.js';
import { startUpstream, type Upstream } from './support/upstream.js';

/** A newline, then a key; U+2028 and NEL are line breaks to PyYAML (Ansible, Kubespray) though not to YAML 1.2. */
const VERSION = '1.0\ncontainerd_insecure_registries:\n  - evil.example:5000\n## Owned\n- [click](http://evil) `tick`\u2028pyyaml_break: 1\u0085nel_break: 2';
const NAME = 'welkin\n# *evil* <b>bold</b> [z](http://evil) |t|\rserver = "http://evil"';
/** What the README shows for them: escaped to one line, in a code span fenced past their backticks. */
const VERSION_SHOWN = '``1.0\\ncontainerd_insecure_registries:\\n  - evil.example:5000\\n## Owned\\n- [click](http://evil) `tick`\\u{2028}pyyaml_break: 1\\x85nel_break: 2``';
const NAME_SHOWN = '`welkin\\n# *evil* <b>bold</b> [z](http://evil) |t|\\rserver = "http://evil"`';

let up: Upstream;
let target: TestRegistry;
let work: string;
let good: string;
let evil: string;
let pub: string;

interface Emitted {
  files: Map<string, string>;
}

async function unpack(bundle: string, tag: string): Promise<Emitted> {
  const dir = await makeTempDir(`airlock-emit-${tag}-`);
  const cfg = path.join(dir, 'cfg');
  const r = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', dir, '--fileserver-url', 'http://fileserver.internal:8080', '--emit-config', cfg]);
  assert.equal(r.code, 0, r.stderr);
  const files = new Map<string, string>();
  for (const e of await readdir(cfg, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const full = path.join(e.parentPath, e.name);
    files.set(path.relative(cfg, full).split(path.sep).join('/'), await readFile(full, 'utf8'));
  }
  return { files };
}

before(async () => {
  up = await startUpstream();
  target = await startRegistry();
  let key: string;
  ({ work, bundle: good, pub, key } = await buildUpstreamBundle(up, 'airlock-emit-hostile-'));
  const pem = await readFile(key, 'utf8');
  evil = path.join(work, 'evil.tar');
  await rewrite(good, evil, (entries) => {
    const bj = JSON.parse(entries.find((e) => e.name === 'bundle.json')?.data.toString('utf8') ?? '{}') as { name: string; version: string; images: Array<{ ref: string }> };
    bj.name = NAME;
    bj.version = VERSION;
    // Underscores are emphasis to Markdown; a reference may hold them (and does here, twice over).
    for (const i of bj.images) i.ref = i.ref.replace('/team/app:1.0', '/team/my__app_x:1_0_').replace('/team/docker-app:2.0', '/team/provider-a__x_y:v_1_');
    const data = Buffer.from(JSON.stringify(bj));
    const sig = Buffer.from(sign('sha256', data, { key: pem, dsaEncoding: 'der' }).toString('base64'));
    return entries.map((e) => ({ name: e.name, data: e.name === 'bundle.json' ? data : e.name === 'bundle.json.sig' ? sig : e.data }));
  });
});
after(async () => {
  await up?.stop();
  await target?.stop();
});

describe('emitted config for a signed bundle.json with hostile names', () => {
  let plain: Emitted;
  let hostile: Emitted;
  before(async () => {
    plain = await unpack(good, 'plain');
    hostile = await unpack(evil, 'hostile');
  });

  it('writes the same files as for plain names', () => {
    assert.deepEqual([...hostile.files.keys()].sort(), [...plain.files.keys()].sort());
  });

  it('every YAML file parses to exactly the keys the plain bundle gives: no injected key', () => {
    for (const f of [...plain.files.keys()].filter((n) => n.endsWith('.yaml'))) {
      const text = hostile.files.get(f) ?? '';
      const keys = Object.keys(parseYaml(text) as object).sort();
      assert.deepEqual(keys, Object.keys(parseYaml(plain.files.get(f) ?? '') as object).sort(), f);
      assert.ok(!keys.includes('containerd_insecure_registries'), f);
      // One comment line heads it, holding no line break of any kind (PyYAML reads U+2028 and NEL as ones).
      const [first, second] = text.split('\n');
      assert.match(first ?? '', /^# .*\\n## Owned\\n.*\\u\{2028\}pyyaml_break: 1\\x85nel_break: 2.*see \.\.\/README\.md\.$/, f);
      assert.doesNotMatch(second ?? '', /^#/, f);
      assert.doesNotMatch(text, /[\u0085\u2028\u2029\r]/, f);
    }
  });

  it('every hosts.toml parses to the same keys', () => {
    for (const f of [...plain.files.keys()].filter((n) => n.endsWith('hosts.toml'))) {
      assert.deepEqual(Object.keys(parseToml(hostile.files.get(f) ?? '')).sort(), Object.keys(parseToml(plain.files.get(f) ?? '')).sort(), f);
    }
  });

  it('README.md shows the name and version as code on one line, and adds no heading, list item or link', () => {
    const readme = hostile.files.get('README.md') ?? '';
    assert.ok(readme.includes(`Bundle ${NAME_SHOWN} ${VERSION_SHOWN}, built `), readme.split('\n').slice(0, 4).join('\n'));
    assert.doesNotMatch(readme, /^## Owned/m);
    assert.doesNotMatch(readme, /^- \[click\]/m);
    assert.doesNotMatch(readme, /^# \*evil\*/m);
    assert.doesNotMatch(readme, /^containerd_insecure_registries/m);
    assert.deepEqual(
      readme.split('\n').filter((l) => l.startsWith('#')),
      plain.files.get('README.md')?.split('\n').filter((l) => l.startsWith('#')),
      'the same headings as for plain names',
    );
    // References with `_` are shown as code (the Crossplane package left out: the registry has a port).
    assert.match(readme, /`images\.crossplane\.providers\.a__x_y: 127\.0\.0\.1:\d+\/team\/provider-a__x_y:v_1_`/);
  });
});

describe('unpack --emit-config onto a private CA, with an https file server', () => {
  let tls: TestRegistry;
  before(async () => {
    tls = await startRegistry({ tls: true });
  });
  after(async () => tls?.stop());

  it('notes on stderr, and warns in the README, that the cluster\'s file-server clients cannot be given the CA', async () => {
    const dir = await makeTempDir('airlock-emit-ca-');
    const cfg = path.join(dir, 'cfg');
    const r = await runAirlock(['unpack', good, '--pub', pub, '--registry', tls.host, '--ca-file', tls.caFile ?? '', '--files-dir', dir, '--fileserver-url', 'https://files.internal', '--emit-config', cfg]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /note: the file server https:\/\/files\.internal is https and --ca-file was given: OpenSearch's plugin installer, falcoctl, Falco's driver loader in the cluster cannot be given a private CA/);
    assert.match(await readFile(path.join(cfg, 'README.md'), 'utf8'), /## Written, but will not work[\s\S]*file server `https:\/\/files\.internal` speaks HTTPS and --ca-file was given/);
  });
});
