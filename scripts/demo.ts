// npm run demo: the whole airlock story on this machine, with no internet.
//   an "internet" → airlock build → carry (sha256sum) → verify → inspect →
//   airlock serve (and pull from it) → airlock unpack → the Welkin config.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AIRLOCK } from '../test/support/cli.js';
import { makeTempDir, removeTempDir } from '../test/support/proc.js';
import { startServe } from '../test/support/serve.js';
import { requireBinary } from '../test/support/tools.js';
import { startDemoUpstream } from './demo/upstream.js';

const started = Date.now();
const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
let step = 0;
const say = (title: string) => console.log(`\n${bold(`== ${++step}. ${title}`)}`);
const indent = (text: string) => text.replace(/\n$/, '').split('\n').map((l) => `   ${l}`).join('\n');

function have(bin: string): boolean {
  try {
    requireBinary(bin);
    return true;
  } catch {
    return false;
  }
}

/** Runs the real CLI (or another program), shows the command and its output, fails the demo on a non-zero exit. */
async function sh(cmd: string, args: string[], opts: { show?: string[]; input?: string } = {}): Promise<string> {
  const shown = [cmd === process.execPath ? 'airlock' : cmd, ...(opts.show ?? args.slice(cmd === process.execPath ? 1 : 0))].join(' ');
  console.log(`   $ ${shown}`);
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin.end(opts.input ?? '');
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  if (out.trim()) console.log(indent(out));
  if (code !== 0) throw new Error(`${shown} exited ${code}:\n${err}`);
  return out;
}

const airlock = (args: string[], show?: string[]) => sh(process.execPath, [AIRLOCK, ...args], { show: show ?? args });

async function main(): Promise<void> {
  const work = await makeTempDir('airlock-demo-');
  const rel = (p: string) => path.relative(work, p) || '.';
  const upstream = await startDemoUpstream();
  try {
    say('An "internet" on this machine');
    console.log(`   registry     http://${upstream.registryHost}  (an image index for amd64+arm64, a Trivy DB, Falco rules)`);
    console.log(`   file server  ${upstream.filesUrl}  (an OpenSearch plugin with its .sha512, a Falco driver)`);
    console.log(`   working in   ${work}`);

    say('The manifest: what the air-gapped platform needs');
    const manifest = `apiVersion: airlock/v1
kind: Bundle
metadata:
  name: demo
  version: "2026.11"
spec:
  images:
    - ${upstream.registryHost}/${upstream.images.index}
  trivy:
    db: ${upstream.registryHost}/${upstream.images.trivy}
    javaDb: false
  falco:
    rules: [${upstream.registryHost}/${upstream.images.rules}]
    drivers:
      repoUrl: ${upstream.filesUrl}/driver
      version: 8.1.0+driver
      kernels:
        - { target: debian, kernelRelease: 6.1.0-13-amd64, kernelVersion: "1" }
  opensearch:
    version: "2.19.4"
    plugins: [repository-s3]
    baseUrl: ${upstream.filesUrl}/releases/plugins
`;
    const manifestFile = path.join(work, 'demo.yaml');
    await writeFile(manifestFile, manifest);
    console.log(indent(manifest));

    say('The signature policy: who must have signed what');
    await mkdir(path.join(work, 'keys'));
    await writeFile(path.join(work, 'keys', 'publisher.pub'), upstream.publisherKey);
    const policyText = `apiVersion: airlock/v1
kind: SignaturePolicy
keys: { publisher: keys/publisher.pub }
rules:
  - images: ["${upstream.registryHost}/demo/**"]
    key: publisher
default: warn      # the Trivy DB and Falco rules of this demo are not signed: carried with a warning
`;
    await writeFile(path.join(work, 'policy.yaml'), policyText);
    console.log(indent(policyText));

    say('Online: make a signing key and build the bundle, checking the publishers\' signatures');
    const key = path.join(work, 'airlock');
    await airlock(['keygen', '--out', key], ['keygen', '--out', rel(key)]);
    const bundle = path.join(work, 'demo.tar');
    await airlock(['build', manifestFile, '-o', bundle, '--key', `${key}.key`, '--cache', path.join(work, 'cache'), '--policy', path.join(work, 'policy.yaml')], ['build', 'demo.yaml', '-o', 'demo.tar', '--key', 'airlock.key', '--policy', 'policy.yaml']);

    say('Carry demo.tar and demo.tar.sha256 across the gap; check the copy');
    const sidecar = await readFile(`${bundle}.sha256`, 'utf8');
    const actual = createHash('sha256').update(await readFile(bundle)).digest('hex');
    console.log(`   $ sha256sum -c demo.tar.sha256\n   demo.tar: ${sidecar.startsWith(actual) ? 'OK' : 'FAILED'}`);
    if (!sidecar.startsWith(actual)) throw new Error('the sidecar does not match');

    say('Inside: verify the signature and every byte, and see what is in it');
    await airlock(['verify', bundle, '--pub', `${key}.pub`, '--signatures'], ['verify', 'demo.tar', '--pub', 'airlock.pub', '--signatures']);
    await airlock(['inspect', bundle], ['inspect', 'demo.tar']);

    say('No registry yet? Serve the bundle itself');
    const served = await startServe(bundle, `${key}.pub`);
    try {
      console.log(`   $ airlock serve demo.tar --pub airlock.pub   (registry ${served.registry}, files ${served.files})`);
      if (have('skopeo')) {
        const policy = path.join(work, 'policy.json');
        await writeFile(policy, '{"default":[{"type":"insecureAcceptAnything"}]}');
        await sh('skopeo', ['--policy', policy, 'copy', '--all', '--quiet', '--src-tls-verify=false', `docker://${served.host}/${upstream.images.index}`, `oci:${path.join(work, 'pulled')}:hello`], {
          show: ['copy', '--all', `docker://${served.host}/${upstream.images.index}`, 'oci:pulled:hello'],
        });
        const idx = JSON.parse(await readFile(path.join(work, 'pulled', 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
        console.log(`   pulled ${upstream.images.index} with skopeo: ${idx.manifests[0]?.digest}`);
      } else {
        console.log('   (skopeo is not installed: pulling with plain HTTP instead)');
        const res = await fetch(`${served.registry}/v2/${upstream.images.index.replace(':', '/manifests/')}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } });
        const body = Buffer.from(await res.arrayBuffer());
        console.log(`   GET ${upstream.images.index}: ${res.status}, ${res.headers.get('docker-content-digest')}, ${createHash('sha256').update(body).digest('hex') === res.headers.get('docker-content-digest')?.slice(7) ? 'bytes match' : 'MISMATCH'}`);
      }
      const plugin = await fetch(`${served.files}/opensearch/repository-s3-2.19.4.zip`);
      console.log(`   GET ${served.files}/opensearch/repository-s3-2.19.4.zip: ${plugin.status}, ${(await plugin.arrayBuffer()).byteLength} bytes`);
    } finally {
      await served.stop();
    }

    say('Unpack into the private registry and file server, and write the platform config');
    if (!have('docker-registry')) {
      console.log('   (docker-registry is not installed; `sudo bash scripts/install-test-deps.sh` adds it and this step)');
    } else {
      const { startRegistry } = await import('../test/support/registry.js');
      const target = await startRegistry();
      try {
        const files = path.join(work, 'fileserver');
        await mkdir(files);
        const cfg = path.join(work, 'config');
        await airlock(
          ['unpack', bundle, '--pub', `${key}.pub`, '--registry', `${target.host}/welkin`, '--files-dir', files, '--fileserver-url', 'http://fileserver.air-gapped.internal:8080', '--emit-config', cfg, '--report', path.join(work, 'evidence')],
          ['unpack', 'demo.tar', '--pub', 'airlock.pub', '--registry', `${target.host}/welkin`, '--files-dir', 'fileserver', '--fileserver-url', 'http://fileserver.air-gapped.internal:8080', '--emit-config', 'config', '--report', 'evidence'],
        );
        say('Run it again: everything is in place, nothing is pushed');
        await airlock(['unpack', bundle, '--pub', `${key}.pub`, '--registry', `${target.host}/welkin`, '--files-dir', files], ['unpack', 'demo.tar', '--pub', 'airlock.pub', '--registry', `${target.host}/welkin`, '--files-dir', 'fileserver']);
        say('The evidence for the change board: an HTML page and a CycloneDX SBOM of the transfer');
        for (const f of ['report.html', 'sbom.cdx.json']) {
          const bytes = await readFile(path.join(work, 'evidence', f));
          console.log(`   evidence/${f}  ${bytes.length} bytes`);
        }
        const sbom = JSON.parse(await readFile(path.join(work, 'evidence', 'sbom.cdx.json'), 'utf8')) as { specVersion?: string; components?: Array<{ type: string; name: string }> };
        console.log(`   CycloneDX ${sbom.specVersion}: ${(sbom.components ?? []).map((c) => `${c.type} ${c.name}`).join(', ')}`);
        say('The Welkin config to merge (config/welkin/*.yaml)');
        for (const f of ['welkin/common-config.yaml', 'welkin/sc-config.yaml']) {
          console.log(`   --- ${f}`);
          console.log(indent(await readFile(path.join(cfg, f), 'utf8')));
        }
      } finally {
        await target.stop();
      }
    }
    console.log(`\n${bold(`demo finished in ${((Date.now() - started) / 1000).toFixed(1)} s`)}`);
    await removeTempDir(work);
  } finally {
    await upstream.stop();
  }
}

main().catch((err: Error) => {
  console.error(`\ndemo failed: ${err.message}`);
  process.exit(1);
});
