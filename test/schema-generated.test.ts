// The manifest validator is ajv's code for manifests/airlock.schema.json,
// generated ahead of time (npm run gen). A schema edited without running it
// would leave the CLI checking manifests against the old schema: this fails then.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { generate, GENERATED } from '../scripts/gen-validator.js';

test('src/manifest/validate.generated.ts is what npm run gen writes for the schema as it is', () => {
  assert.ok(readFileSync(GENERATED, 'utf8') === generate(), 'out of date with manifests/airlock.schema.json: run npm run gen and commit the result');
});
