import { test } from 'node:test';
import assert from 'node:assert/strict';
import { falcoDriverFileName, falcoDriverPath, falcoDriverUrl, goQueryEscape, FALCO_DRIVER_REPO } from '../src/presets/falco.js';
import { opensearchPluginPath, opensearchPluginUrl, OPENSEARCH_BASE_URL } from '../src/presets/opensearch.js';

test('falco driver URL encodes + as %2B while the landing path keeps +', () => {
  const name = falcoDriverFileName({ target: 'ubuntu-generic', kernelRelease: '6.8.0-79-generic', kernelVersion: '79' }, 'ebpf');
  assert.equal(name, 'falco_ubuntu-generic_6.8.0-79-generic_79.o');
  // The example in falcosecurity/falco#3668, as falco-driver-loader 0.41.3 fetched it.
  assert.equal(
    falcoDriverUrl(FALCO_DRIVER_REPO, '8.1.0+driver', 'x86_64', name),
    'https://download.falco.org/driver/8.1.0%2Bdriver/x86_64/falco_ubuntu-generic_6.8.0-79-generic_79.o',
  );
  assert.equal(falcoDriverPath('8.1.0+driver', 'x86_64', name), 'falco/driver/8.1.0+driver/x86_64/falco_ubuntu-generic_6.8.0-79-generic_79.o');
  assert.equal(
    falcoDriverFileName({ target: 'debian', kernelRelease: '6.1.0-13-amd64', kernelVersion: 1 }, 'kmod'),
    'falco_debian_6.1.0-13-amd64_1.ko',
  );
});

test('goQueryEscape matches Go url.QueryEscape', () => {
  // Values from Go: url.QueryEscape("8.1.0+driver"), ("a b/c~d_e.f-g"), ("é").
  assert.equal(goQueryEscape('8.1.0+driver'), '8.1.0%2Bdriver');
  assert.equal(goQueryEscape('a b/c~d_e.f-g'), 'a+b%2Fc~d_e.f-g');
  assert.equal(goQueryEscape('é'), '%C3%A9');
  assert.equal(goQueryEscape("!'()*"), '%21%27%28%29%2A');
});

test('OpenSearch plugin URL and landing path', () => {
  assert.equal(
    opensearchPluginUrl(OPENSEARCH_BASE_URL, 'repository-s3', '2.19.4'),
    'https://artifacts.opensearch.org/releases/plugins/repository-s3/2.19.4/repository-s3-2.19.4.zip',
  );
  assert.equal(opensearchPluginPath('repository-s3', '2.19.4'), 'opensearch/repository-s3-2.19.4.zip');
});
