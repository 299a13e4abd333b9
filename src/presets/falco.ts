// Falco: rules and plugins are OCI artifacts; prebuilt drivers are files laid
// out as falcoctl downloads them (pkg/driver/distro: toURL/toFilename).
import type { PathSegment } from '../manifest/problems.js';
import { baseUrl, type PresetContext } from './context.js';

export const FALCO_DRIVER_REPO = 'https://download.falco.org/driver';

export interface FalcoKernel {
  target: string;
  kernelRelease: string;
  kernelVersion: string | number;
  sha256?: string;
}

export interface FalcoSpec {
  rules?: string[];
  plugins?: string[];
  drivers?: {
    repoUrl?: string;
    version: string;
    arch?: 'x86_64' | 'aarch64';
    kind?: 'kmod' | 'ebpf';
    kernels: FalcoKernel[];
  };
}

/** Go's url.QueryEscape, which falcoctl applies to the driver version (`+` → `%2B`). */
export function goQueryEscape(s: string): string {
  let out = '';
  for (const byte of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(c)) out += c;
    else if (c === ' ') out += '+';
    else out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function falcoDriverFileName(k: Pick<FalcoKernel, 'target' | 'kernelRelease' | 'kernelVersion'>, kind: 'kmod' | 'ebpf'): string {
  return `falco_${k.target}_${k.kernelRelease}_${String(k.kernelVersion)}${kind === 'kmod' ? '.ko' : '.o'}`;
}

/** The URL falcoctl fetches: version query-escaped. */
export function falcoDriverUrl(repo: string, version: string, arch: string, fileName: string): string {
  return `${repo}/${goQueryEscape(version)}/${arch}/${fileName}`;
}

/** Where it lands below the file server root: version with a literal `+`, so repoURL is FILESERVER/falco/driver. */
export function falcoDriverPath(version: string, arch: string, fileName: string): string {
  return `falco/driver/${version}/${arch}/${fileName}`;
}

// eslint-disable-next-line no-control-regex -- rejecting control characters is the point
const SEGMENT_BAD = /[/\\\s\x00-\x1f]/;

export function expandFalco(spec: FalcoSpec, ctx: PresetContext): void {
  spec.rules?.forEach((ref, i) => ctx.artifact(ref, ['spec', 'falco', 'rules', i], 'falco-rules'));
  spec.plugins?.forEach((ref, i) => ctx.artifact(ref, ['spec', 'falco', 'plugins', i], 'falco-plugin'));
  const d = spec.drivers;
  if (!d) return;
  const at: PathSegment[] = ['spec', 'falco', 'drivers'];
  const repo = baseUrl(ctx, d.repoUrl ?? FALCO_DRIVER_REPO, [...at, 'repoUrl']);
  const arch = d.arch ?? 'x86_64';
  const kind = d.kind ?? 'kmod';
  if (kind === 'ebpf') {
    ctx.warn(
      [...at, 'kind'],
      'ebpf is the legacy eBPF probe, gone from falcoctl 0.13 and Falco 0.44 ("drop legacy BPF probe support"): these drivers serve Falco 0.41 (Welkin\'s) but not an upgrade; choose kmod, or modern_ebpf in the cluster (built into Falco, no files to carry)',
    );
  }
  let ok = repo !== undefined;
  if (SEGMENT_BAD.test(d.version) || d.version === '.' || d.version === '..') {
    ctx.problem([...at, 'version'], `"${d.version}" cannot be a path segment; write the driver version such as 8.1.0+driver`);
    ok = false;
  }
  d.kernels.forEach((k, i) => {
    const kernelVersion = String(k.kernelVersion);
    for (const [key, value] of [['target', k.target], ['kernelRelease', k.kernelRelease], ['kernelVersion', kernelVersion]] as const) {
      if (SEGMENT_BAD.test(value)) {
        ctx.problem([...at, 'kernels', i, key], `"${value}" contains "/", "\\", whitespace or control characters; write it as falcoctl prints it`);
        ok = false;
      }
    }
    if (!ok || repo === undefined) return;
    const fileName = falcoDriverFileName({ ...k, kernelVersion }, kind);
    ctx.file(
      {
        url: falcoDriverUrl(repo, d.version, arch, fileName),
        path: falcoDriverPath(d.version, arch, fileName),
        checksum: k.sha256 ? { type: 'digest', algorithm: 'sha256', hex: k.sha256.toLowerCase() } : { type: 'pinned-at-build' },
        role: 'falco-driver',
      },
      [...at, 'kernels', i],
    );
  });
}
