// The OCI 1.1 referrers API (distribution-spec "Listing Referrers") over what
// the catalog carries: for a repository that exists, 200 with an image index
// of the descriptors of the manifests whose `subject` is the digest, empty
// when none (never 404: a 404 tells clients the registry has no API and sends
// them to the fallback tag); 400 for a digest that is not one. `artifactType`
// filters and is then named in OCI-Filters-Applied. The list is bounded by
// what the bundle carries (64 per subject and image), so it is one page: no Link.
import { digestProblem } from '../oci/reference.js';
import { OCI_INDEX } from '../oci/mediatypes.js';
import type { Repo } from './catalog.js';

export type ReferrersAnswer = { readonly status: 200; readonly body: Buffer; readonly filtered: boolean } | { readonly status: 400; readonly problem: string };

export function referrersAnswer(repo: Repo, digest: string, query: URLSearchParams): ReferrersAnswer {
  const problem = digestProblem(digest);
  if (problem) return { status: 400, problem };
  // Several artifactType parameters: any of them; an empty one asks for nothing.
  const types = query.getAll('artifactType').filter((t) => t !== '');
  const all = repo.referrers.get(digest) ?? [];
  const manifests = types.length === 0 ? all : all.filter((d) => d.artifactType !== undefined && types.includes(d.artifactType));
  // Compact JSON, fields in a fixed order: the same bundle answers the same bytes.
  return { status: 200, body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })), filtered: types.length > 0 };
}
