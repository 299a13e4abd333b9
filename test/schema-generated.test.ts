// The manifest and policy validators are ajv's code for their schemas
// (manifests/airlock.schema.json, manifests/policy.schema.json), generated
// ahead of time (npm run gen). A schema edited without running it would leave
// the CLI checking files against the old schema: this fails then.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { generate, TARGETS } from '../scripts/gen-validator.js';

for (const target of TARGETS) {
  test(`${target.schema}: its generated validator is what npm run gen writes for the schema as it is`, () => {
    assert.ok(readFileSync(target.out, 'utf8') === generate(target), `out of date with ${target.schema}: run npm run gen and commit the result`);
  });
}
