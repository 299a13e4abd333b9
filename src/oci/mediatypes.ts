// Media types airlock must tell apart; anything else is carried as an opaque blob.

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** What we ask registries for; distribution 2.8 answers 404 for an OCI manifest unless Accept names it. */
export const MANIFEST_ACCEPT = [OCI_INDEX, OCI_MANIFEST, DOCKER_MANIFEST_LIST, DOCKER_MANIFEST].join(', ');

export const isIndexType = (mt: string | undefined): boolean => mt === OCI_INDEX || mt === DOCKER_MANIFEST_LIST;
export const isManifestType = (mt: string | undefined): boolean => mt === OCI_MANIFEST || mt === DOCKER_MANIFEST;

export const ANNOTATION_REF_NAME = 'org.opencontainers.image.ref.name';
export const ANNOTATION_CONTAINERD_NAME = 'io.containerd.image.name';
