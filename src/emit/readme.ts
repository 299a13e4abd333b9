// DIR/README.md: what --emit-config wrote, for which target, what was left out
// and why, and every manual step still needed; and the CA for the nodes.
import { READ_BOUNDS, readRegular } from '../fsx/safe.js';
import { CA_FILE, KUBESPRAY_FILE, NODE_CA_PATH } from './containerd.js';
import { TRUST_WORDS, registryTrust, type EmitContext } from './context.js';
import { printable } from '../util/printable.js';
import { mdCode } from './escape.js';
import { Notes } from './notes.js';
import { KUBESPRAY_OFFLINE_FILE } from './kubespray.js';
import { COMMON_FILE, SC_FILE, WELKIN_SOURCE } from './welkin.js';

function describe(file: string): string {
  if (file === COMMON_FILE) return 'Welkin overrides: merge into `$CK8S_CONFIG_PATH/common-config.yaml` (both clusters).';
  if (file === SC_FILE) return 'Welkin overrides: merge into `$CK8S_CONFIG_PATH/sc-config.yaml` (service cluster).';
  if (file === `containerd/${CA_FILE}`) return `the registry's CA (from --ca-file), for \`${NODE_CA_PATH}\` on every node.`;
  if (file === KUBESPRAY_OFFLINE_FILE) return 'Kubespray offline variables: files_repo and the download bases pointing at the file server, registry_host and containerd_registries_mirrors (e.g. `inventory/<cluster>/group_vars/all/offline.yml`).';
  if (file === KUBESPRAY_FILE) return 'Kubespray inventory variables (e.g. `inventory/<cluster>/group_vars/all/airlock.yml`).';
  const host = /^containerd\/certs\.d\/(.+)\/hosts\.toml$/.exec(file)?.[1];
  if (host) return `containerd mirror for images named ${mdCode(`${host}/…`)}, for ${mdCode(`/etc/containerd/certs.d/${host}/hosts.toml`)} on every node.`;
  return '';
}

/** One list item: whatever a note holds, it stays one line. */
const bullet = (s: string) => `- ${printable(s)}`;

export function readme(ctx: EmitContext, written: string[], notes: Notes): string {
  const trust = registryTrust(ctx);
  const out: string[] = [
    `# Configuration written by airlock ${ctx.via ?? 'unpack'}`,
    '',
    // Name, version and date come from bundle.json, which another tool may have written: shown, never read as Markdown.
    ctx.via === 'sync'
      ? `Manifest ${mdCode(ctx.index.name)} ${mdCode(ctx.index.version)}, synced ${mdCode(ctx.index.created)}.`
      : `Bundle ${mdCode(ctx.index.name)} ${mdCode(ctx.index.version)}, built ${mdCode(ctx.index.created)}.`,
    '',
    '## Target',
    '',
    bullet(`Registry: ${mdCode(ctx.registry.host)}${ctx.registry.prefix ? `, prefix ${mdCode(ctx.registry.prefix)}` : ''}, layout \`${ctx.layout}\`, ${TRUST_WORDS[trust]}.`),
    bullet(ctx.fileserverUrl ? `File server, as the cluster sees it: ${mdCode(ctx.fileserverUrl)}.` : 'File server: none given (no --fileserver-url or --files-url), so nothing that needs one was written (OpenSearch plugins, Falco index and drivers).'),
    bullet(`Welkin settings checked against ${WELKIN_SOURCE} (config/schemas/config.yaml and the charts' values); containerd hosts.toml (config_path); Kubespray containerd_registries_mirrors.`),
    '',
    '## Files',
    '',
    ...written.filter((f) => f !== 'README.md').map((f) => bullet(`${mdCode(f)}: ${describe(f)}`)),
    '',
  ];
  if (notes.omitted.length) {
    out.push('## Left out, and why', '', 'A setting that would break its consumer as this target is set up is not written.', '');
    for (const o of notes.omitted) out.push(bullet(mdCode(o.setting)), `  - Why: ${printable(o.why)}`, `  - Instead: ${printable(o.todo)}`);
    out.push('');
  }
  if (notes.warnings.length) {
    out.push('## Written, but will not work as the target is set up', '', ...notes.warnings.map(bullet), '');
  }
  const steps: string[] = [];
  if (written.includes(COMMON_FILE) || written.includes(SC_FILE)) {
    steps.push('Merge the files under `welkin/` into your config (`$CK8S_CONFIG_PATH`): a list in them replaces the list in yours.');
  }
  for (const [file, keys] of notes.placeholders) {
    steps.push(`Replace \`set-me\` in ${mdCode(file)} with IP/32 netmasks: ${keys.join('; ')}.`);
  }
  steps.push(...notes.steps);
  if (written.some((f) => f.startsWith('containerd/'))) {
    steps.push(
      'Without Kubespray: copy `containerd/` to `/etc/containerd/` on every node (`cp -r containerd/. /etc/containerd/`), with `config_path = "/etc/containerd/certs.d"` in containerd\'s registry configuration. With Kubespray, use `' +
        KUBESPRAY_FILE +
        '` instead: it writes the same hosts.toml files.',
    );
  }
  steps.push(
    'Run `./bin/ck8s validate sc` and `./bin/ck8s validate wc`: they must report no `set-me` left and no schema failure.' +
      (notes.unchecked.length ? ` They do not see the \`set-me\` in ${notes.unchecked.join('; ')}: check those by hand.` : ''),
  );
  steps.push(
    ctx.via === 'sync'
      ? 'Keep it fresh: run the same airlock sync again (the Trivy DB is rebuilt upstream every 6 hours).'
      : 'Keep what the bundle carries fresh: build and unpack a new bundle (the Trivy DB is rebuilt upstream every 6 hours).',
  );
  out.push('## Manual steps', '', ...steps.map((s, i) => `${i + 1}. ${printable(s)}`), '');
  return out.join('\n');
}

export { Notes };

/**
 * The files written beside the config: `containerd/airlock-registry-ca.crt` (the
 * --ca-file, for the path containerd and Kubespray are told) and `README.md`.
 */
export async function readmeFiles(ctx: EmitContext, written: string[], notes: Notes): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (ctx.caFile && written.some((f) => f.startsWith('containerd/') || f === KUBESPRAY_FILE)) out.set(`containerd/${CA_FILE}`, (await readRegular(ctx.caFile, { ...READ_BOUNDS.pem, follow: true })).toString('utf8'));
  out.set('README.md', readme(ctx, [...written, ...out.keys()], notes));
  return out;
}
