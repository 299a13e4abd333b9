// Harbor keeps every repository inside a project: checked before anything is pushed.
import { RegistryError } from '../registry/client.js';
import { HarborApi, harborProject } from '../registry/harbor.js';
import { TargetConflictError, type TargetName } from '../bundle/targets.js';
import type { TargetOptions } from './unpack.js';

/**
 * On Harbor, every repository must sit inside a project that exists: checked
 * before anything is pushed, and missing projects created only when asked.
 */
export async function checkHarborProjects(targets: readonly TargetName[], opts: TargetOptions): Promise<void> {
  const harbor = await HarborApi.detect(opts.http, opts.registry.host);
  if (!harbor) return;
  const outside = [...new Set(targets.filter((t) => !harborProject(t.repository)).map((t) => t.repository))];
  if (outside.length) {
    throw new TargetConflictError(
      outside.map(
        (r) =>
          `${opts.registry.host}/${r} (from ${targets.find((t) => t.repository === r)?.source}) would land outside a Harbor project, which Harbor cannot hold; ` +
          `give a project as prefix (--registry ${opts.registry.host}/PROJECT, e.g. ${opts.registry.host}/library) or use --layout host`,
      ),
    );
  }
  const projects = [...new Set(targets.map((t) => harborProject(t.repository) ?? ''))].sort();
  const missing: string[] = [];
  for (const p of projects) if (!(await harbor.projectExists(p))) missing.push(p);
  if (missing.length === 0) return;
  if (!opts.createProjects) {
    throw new RegistryError(
      `Harbor at ${opts.registry.host} has no project ${missing.join(', ')}; nothing was pushed. Create ${missing.length > 1 ? 'them' : 'it'} in Harbor, or rerun with --create-projects (with credentials allowed to create projects)`,
    );
  }
  for (const p of missing) {
    await harbor.createProject(p);
    opts.progress.log(`created Harbor project ${p} at ${opts.registry.host}`);
  }
}
