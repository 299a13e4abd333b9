// The primitive items a manifest expands to. Everything downstream (build,
// bundle, unpack) works on these three kinds only.
import type { Reference } from '../oci/reference.js';

/** Where an item was declared, for error messages. */
export interface Origin {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  /** Key path in the manifest, e.g. `spec.images[3]`. */
  readonly path: string;
  /** An image or artifact reference as written there, when it differs from the normalized one (`nginx`). */
  readonly written?: string;
}

export type ArtifactRole = 'trivy-db' | 'trivy-java-db' | 'falco-rules' | 'falco-plugin';
export type FileRole = 'opensearch-plugin' | 'falco-driver' | 'kubespray' | 'file';

export interface ImageItem {
  readonly kind: 'image';
  /** Canonical reference, e.g. `docker.io/library/nginx:1.27`. */
  readonly ref: string;
  readonly reference: Reference;
  /** Platforms to keep (os/arch[/variant]); undefined keeps all and the index byte-identical. */
  platforms?: string[];
  readonly origins: Origin[];
}

export interface ArtifactItem {
  readonly kind: 'artifact';
  readonly ref: string;
  readonly reference: Reference;
  role?: ArtifactRole;
  readonly origins: Origin[];
}

export type HashAlgorithm = 'sha256' | 'sha512';

export type Checksum =
  | { readonly type: 'digest'; readonly algorithm: HashAlgorithm; readonly hex: string }
  /** Fetched from a checksum file; the algorithm comes from its suffix, or from the hex length when absent. */
  | { readonly type: 'url'; readonly url: string; readonly algorithm?: HashAlgorithm }
  /** No published checksum exists (Falco drivers); the digest seen at build is pinned in the signed bundle. */
  | { readonly type: 'pinned-at-build' };

export interface FileItem {
  readonly kind: 'file';
  readonly url: string;
  /** Relative landing path below the file server root (and below `files/` in the bundle). */
  readonly path: string;
  readonly checksum: Checksum;
  readonly role: FileRole;
  readonly origins: Origin[];
}

export type Item = ImageItem | ArtifactItem | FileItem;

export interface RegistrySettings {
  plainHttp?: boolean;
  /** Absolute path, resolved against the manifest's folder. */
  caFile?: string;
  insecureSkipTLSVerify?: boolean;
}

/** A validated manifest, expanded into primitive items. */
export interface Plan {
  readonly file: string;
  readonly name: string;
  readonly version?: string;
  readonly platforms?: string[];
  /** `spec.attached: false`: no signatures, attestations or SBOMs are looked for (SPEC §9). */
  readonly attached?: false;
  /** `spec.policy`: the signature policy file, absolute (SPEC §9). */
  readonly policy?: string;
  /** `spec.kubespray`: the release whose tables gave the Kubernetes layer (SPEC §12). */
  readonly kubespray?: KubesprayInfo;
  readonly registries: Record<string, RegistrySettings>;
  readonly vars: Record<string, string>;
  readonly items: Item[];
  /** What loads but should not be chosen, as `file:line:col: path: message` (build and sync print them). */
  readonly warnings?: string[];
}

export interface KubesprayInfo {
  readonly version: string;
  readonly kubeVersion?: string;
  readonly archs: string[];
  /** Base URL variable (github_url, …) → where what it serves lands below the file server, e.g. github.com. */
  readonly bases?: Record<string, string>;
  /** A *_url variable whose file no base covers → that file's landing path. */
  readonly urls?: Record<string, string>;
}
