// Entry of the release files (scripts/release.ts bundles it into release/airlock.mjs and
// the single executable release/airlock-linux-x64): the Node check bin/airlock makes, then the CLI.
// The CLI is imported only after the check so that an old Node gets this message, not a crash
// from deep inside undici; in the bundle the import stays lazy (esbuild wraps what it loads).
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 19)) {
  console.error(
    `airlock needs Node.js 22.19 or newer (24 LTS recommended); this is ${process.version}. ` +
      'Install a newer Node, or use the single executable airlock-linux-x64, which has Node inside.',
  );
  process.exit(1);
}
import('./main.js').then(
  (m) => m.main(process.argv),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
