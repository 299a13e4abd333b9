// What every launcher runs: bin/airlock (over dist/, after its own Node check),
// and the release files (scripts/release.ts bundles this into release/airlock.mjs
// and the single executable release/airlock-linux-x64). The Node check first,
// so that an old Node gets this message, not a crash from deep inside undici;
// then the CLI, imported only after the check (in the bundle the import stays lazy).
//
// `--version` alone is answered without commander or the command wiring
// (about 35 ms of a 90 ms start, measured): scripts and health checks run it
// often. It prints what commander's own --version prints.
// The floor is @sigstore/verify 4's engines (^22.22.2 || ^24.15.0), above undici 8's 22.19.
const [major = 0, minor = 0, patch = 0] = process.versions.node.split('.').map(Number);
const nodeOk =
  major > 24 || (major === 24 && minor >= 15) || (major === 22 && (minor > 22 || (minor === 22 && patch >= 2)));
if (!nodeOk) {
  console.error(
    `airlock needs Node.js 22.22.2 or newer on 22, or 24.15 or newer (24 LTS recommended); this is ${process.version}. ` +
      'Install a newer Node, or use the single executable airlock-linux-x64, which has Node inside.',
  );
  process.exit(1);
}

const args = process.argv.slice(2);
const fail = (err: unknown) => {
  console.error(err);
  process.exit(1);
};
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  import('./version.js').then((m) => process.stdout.write(`${m.VERSION}\n`), fail);
} else {
  import('./main.js').then((m) => m.main(process.argv), fail);
}
