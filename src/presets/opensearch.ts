// Official OpenSearch plugins, laid out as the plugin installer looks for them:
// <base>/<plugin>/<version>/<plugin>-<version>.zip, checked against the
// published <zip>.sha512 (the installer itself checks nothing for a plain URL).
import { baseUrl, type PresetContext } from './context.js';

export const OPENSEARCH_BASE_URL = 'https://artifacts.opensearch.org/releases/plugins';

export interface OpenSearchSpec {
  version: string;
  plugins: string[];
  baseUrl?: string;
}

export function opensearchPluginUrl(base: string, plugin: string, version: string): string {
  return `${base}/${plugin}/${version}/${plugin}-${version}.zip`;
}

export function opensearchPluginPath(plugin: string, version: string): string {
  return `opensearch/${plugin}-${version}.zip`;
}

export function expandOpenSearch(spec: OpenSearchSpec, ctx: PresetContext): void {
  const base = baseUrl(ctx, spec.baseUrl ?? OPENSEARCH_BASE_URL, ['spec', 'opensearch', 'baseUrl']);
  if (!base) return;
  spec.plugins.forEach((plugin, i) => {
    const url = opensearchPluginUrl(base, plugin, spec.version);
    ctx.file(
      {
        url,
        path: opensearchPluginPath(plugin, spec.version),
        checksum: { type: 'url', url: `${url}.sha512`, algorithm: 'sha512' },
        role: 'opensearch-plugin',
      },
      ['spec', 'opensearch', 'plugins', i],
    );
  });
}
