// kubespray/offline.yml (SPEC §12): Kubespray's own offline variables pointed
// at the file server, where the Kubespray part of the bundle landed at
// <original host>/<original path> (Kubespray's advice for a files_repo), and
// its images kept under their upstream names through containerd mirrors.
import { stringify } from 'yaml';
import { kubesprayMirrorList } from './containerd.js';
import type { EmitContext } from './context.js';
import { commentText } from './escape.js';
import type { Notes } from './notes.js';

export const KUBESPRAY_OFFLINE_FILE = 'kubespray/offline.yml';

/** Kubespray's base URL variables and the hosts they stand for by default, for a bundle that does not record them. */
const DEFAULT_BASES: Record<string, string> = {
  github_url: 'github.com',
  dl_k8s_io_url: 'dl.k8s.io',
  storage_googleapis_url: 'storage.googleapis.com',
  get_helm_url: 'get.helm.sh',
};

export function kubesprayOffline(ctx: EmitContext, notes: Notes): string | undefined {
  const files = ctx.index.files.filter((f) => f.role === 'kubespray');
  if (!ctx.index.kubespray && files.length === 0) return undefined;
  if (!ctx.fileserverUrl) {
    notes.omit({
      setting: KUBESPRAY_OFFLINE_FILE,
      why: 'files_repo needs the file server URL as the nodes see it, and none was given',
      todo: 'run again with --fileserver-url URL (or --files-url)',
    });
    return undefined;
  }
  const vars: Record<string, unknown> = { files_repo: ctx.fileserverUrl };
  // Each base and URL points where build landed its files: <original host>/<original path>.
  const bases = ctx.index.kubespray?.bases ?? DEFAULT_BASES;
  for (const [name, prefix] of Object.entries(bases)) vars[name] = `{{ files_repo }}/${prefix}`;
  const urls = ctx.index.kubespray?.urls ?? {};
  for (const [name, p] of Object.entries(urls)) vars[name] = `{{ files_repo }}/${p}`;
  const covered = (p: string) => Object.values(bases).some((b) => p.startsWith(`${b}/`)) || Object.values(urls).includes(p);
  const uncovered = files.filter((f) => !covered(f.path));
  if (uncovered.length) {
    notes.step(`${KUBESPRAY_OFFLINE_FILE}: Kubespray fetches ${uncovered.map((f) => f.source).join(', ')} through variables airlock could not point at one file (a URL per arch, or not a plain variable); set them in the inventory to {{ files_repo }}/<the file's path> (the files are there).`);
  }
  vars.registry_host = [ctx.registry.host, ctx.registry.prefix].filter(Boolean).join('/');
  const mirrors = kubesprayMirrorList(ctx);
  if (mirrors.length) vars.containerd_registries_mirrors = mirrors;
  const ks = ctx.index.kubespray;
  const what = `Kubespray offline variables written by airlock for ${ctx.index.name} ${ctx.index.version}${ks ? `, Kubespray ${ks.version}${ks.kubeVersion ? `, Kubernetes ${ks.kubeVersion}` : ''}, ${ks.archs.join(', ')}` : ''}`;
  manualSteps(ctx, notes);
  return `# ${commentText(what)}; see ../README.md.\n${stringify(vars)}`;
}

function manualSteps(ctx: EmitContext, notes: Notes): void {
  const ks = ctx.index.kubespray;
  notes.step(
    `${KUBESPRAY_OFFLINE_FILE}: put it in the inventory (e.g. inventory/<cluster>/group_vars/all/offline.yml) with the same choices (vars files${ks?.kubeVersion ? `, kube_version ${ks.kubeVersion}` : ''}${ks ? `, archs ${ks.archs.join(', ')}` : ''}) the bundle was built with: another choice needs files the bundle does not hold. It replaces kubespray/containerd-mirrors.yaml (the same containerd_registries_mirrors).`,
  );
  notes.step('Kubespray still needs, and airlock does not carry: the nodes\' OS packages (a mirror of the distribution\'s repositories, set with yum_repo, debian_repo or ubuntu_repo in offline.yml), and on the Ansible host the Python packages of Kubespray\'s requirements.txt (`pip download -r requirements.txt -d wheels` online, `pip install --no-index --find-links wheels -r requirements.txt` inside).');
  const cilium = ctx.index.images.map((i) => /^quay\.io\/cilium\/cilium:v?([^@]+)/.exec(i.ref)?.[1]).find(Boolean);
  if (cilium) {
    notes.step(
      `Cilium (Kubespray's offline-environment doc): cilium-cli installs the Helm chart from https://helm.cilium.io, which Kubespray's tables do not list. Carry https://helm.cilium.io/index.yaml and https://helm.cilium.io/cilium-${cilium}.tgz under spec.files (paths helm.cilium.io/index.yaml and helm.cilium.io/cilium-${cilium}.tgz, with their sha256), set cilium_install_extra_flags: "--repository {{ files_repo }}/helm.cilium.io/" and useDigest: false in cilium_extra_values; the chart's operator image is quay.io/cilium/operator-generic:v${cilium}, also not in Kubespray's tables: add it to spec.images.`,
    );
  }
}
