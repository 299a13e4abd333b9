// Unpack into Harbor. Harbor cannot be installed here: the target is a
// stand-in that implements exactly the Harbor API endpoints airlock calls
// (test/support/harbor.ts), in front of the real docker-registry, which
// stores what is pushed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'undici';
import { runAirlock } from './support/cli.js';
import { buildUpstreamBundle } from './support/fixture.js';
import { startHarborStandIn, type HarborStandIn } from './support/harbor.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { ACCEPT_ALL_MANIFESTS } from './support/seed.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let up: Upstream;
let bundle: string;
let pub: string;
let reg: TestRegistry;
let harbor: HarborStandIn;

before(async () => {
  up = await startUpstream();
  ({ bundle, pub } = await buildUpstreamBundle(up, 'airlock-harbor-'));
  reg = await startRegistry();
  harbor = await startHarborStandIn(reg.url, { user: 'admin', password: 'Harbor12345' });
});

after(async () => {
  await harbor?.stop();
  await reg?.stop();
  await up?.stop();
});

async function catalog(): Promise<string[]> {
  const agent = new Agent();
  try {
    const res = await request(`${reg.url}/v2/_catalog`, { dispatcher: agent });
    return ((await res.body.json()) as { repositories?: string[] }).repositories ?? [];
  } finally {
    await agent.close();
  }
}

const unpack = async (registry: string, extra: string[] = [], stdin?: string) =>
  runAirlock(['unpack', bundle, '--pub', pub, '--registry', registry, '--files-dir', await makeTempDir('airlock-harbor-files-'), ...extra], stdin);

describe('unpack into Harbor', () => {
  it('a repository that would land outside a project is exit 2 with the fix, before anything is pushed', async () => {
    const r = await unpack(harbor.host);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`${harbor.host}/pause \\(from ${up.registry.host}/pause:3\\.9\\) would land outside a Harbor project`));
    assert.match(r.stderr, new RegExp(`--registry ${harbor.host}/PROJECT, e\\.g\\. ${harbor.host}/library`));
    assert.ok(harbor.api.some((c) => c.path === '/api/v2.0/ping'), 'Harbor was detected by its API');
    assert.deepEqual(await catalog(), [], 'nothing was pushed');
  });

  it('a missing project is reported before pushing, and --create-projects is named', async () => {
    const r = await unpack(`${harbor.host}/welkin`);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`Harbor at ${harbor.host} has no project welkin; nothing was pushed\\. .*--create-projects`));
    assert.deepEqual(await catalog(), []);
  });

  it('--create-projects without credentials that may create one fails naming what to give', async () => {
    const r = await unpack(`${harbor.host}/welkin`, ['--create-projects']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /create Harbor project welkin: .*HTTP 401; give credentials of a user who may create projects/);
    assert.equal(harbor.projects.has('welkin'), false);
    assert.deepEqual(await catalog(), []);
  });

  it('--create-projects with credentials creates the project through the API, then pushes every image into it', async () => {
    const r = await unpack(`${harbor.host}/welkin`, ['--create-projects', '--username', 'admin', '--password-stdin'], 'Harbor12345\n');
    assert.equal(r.code, 0, r.stderr);
    assert.ok(harbor.api.some((c) => c.method === 'POST' && c.path === '/api/v2.0/projects' && c.user === 'admin'), 'POST /projects with the credentials');
    assert.ok(harbor.projects.has('welkin'));
    const repos = await catalog();
    assert.ok(repos.length > 0 && repos.every((x) => x.startsWith('welkin/')), repos.join(', '));
    const agent = new Agent();
    try {
      const res = await request(`${harbor.url}/v2/welkin/pause/manifests/3.9`, { method: 'HEAD', headers: { accept: ACCEPT_ALL_MANIFESTS }, dispatcher: agent });
      await res.body.dump();
      assert.equal(res.headers['docker-content-digest'], up.refs.pause.pushed.digest);
    } finally {
      await agent.close();
    }
  });

  it('a second unpack finds the project and creates nothing', async () => {
    const before = harbor.api.filter((c) => c.method === 'POST').length;
    const r = await unpack(`${harbor.host}/welkin`, ['--create-projects', '--username', 'admin', '--password-stdin'], 'Harbor12345\n');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(harbor.api.filter((c) => c.method === 'POST').length, before);
  });
});

describe('a registry that is not Harbor', () => {
  it('takes repositories without a project as before', async () => {
    const plain = await startRegistry();
    try {
      const r = await unpack(plain.host);
      assert.equal(r.code, 0, r.stderr);
    } finally {
      await plain.stop();
    }
  });
});
