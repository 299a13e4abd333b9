#!/usr/bin/env bash
# Installs the external programs airlock's integration tests drive:
#   docker-registry (CNCF distribution 2.8), skopeo, nginx + WebDAV ext module, openssl,
#   chromium (renders `airlock report`'s page headless).
# Debian/Ubuntu (apt-get). Quick no-op when everything is already there.
#
#   sudo bash scripts/install-test-deps.sh [--force] [--dry-run] [--if-root]
#
#   --force    run apt-get even when every program is present
#   --dry-run  print what would be done, change nothing
#   --if-root  (used by `npm test`) install only when running as root; otherwise
#              just say what is missing and exit 0, so the tests name it
#
# The tests start their own registries and file servers on 127.0.0.1 with
# temporary configs, so the system services these packages ship are not
# wanted: the script keeps them from starting during the install and stops
# and disables any it brought up.
set -euo pipefail

FORCE=0
DRY_RUN=0
IF_ROOT=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    --dry-run) DRY_RUN=1 ;;
    --if-root) IF_ROOT=1 ;;
    -h | --help)
      sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install-test-deps: unknown argument: $arg (try --help)" >&2
      exit 2
      ;;
  esac
done

PACKAGES=(docker-registry skopeo nginx libnginx-mod-http-dav-ext openssl ca-certificates chromium)
BINARIES=(docker-registry skopeo nginx openssl chromium)
DAV_EXT_MODULE=/usr/lib/nginx/modules/ngx_http_dav_ext_module.so
SERVICES=(nginx docker-registry)
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf 'install-test-deps: %s\n' "$*"; }
die() {
  printf 'install-test-deps: error: %s\n' "$*" >&2
  exit 1
}

as_root() {
  if [ "$DRY_RUN" -eq 1 ]; then
    say "would run: $*"
    return 0
  fi
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo "$@"
  fi
}

have() { command -v "$1" >/dev/null 2>&1; }
pkg_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
daemon_pids() { pgrep -x "$1" 2>/dev/null | sort -n || true; }
systemd_running() { [ -d /run/systemd/system ]; }

missing=()
for b in "${BINARIES[@]}"; do
  have "$b" || missing+=("$b")
done
[ -f "$DAV_EXT_MODULE" ] || missing+=("$DAV_EXT_MODULE")
[ -f /etc/ssl/certs/ca-certificates.crt ] || missing+=("ca-certificates")

if [ "${#missing[@]}" -eq 0 ] && [ "$FORCE" -eq 0 ]; then
  say "everything is already installed; nothing to do (use --force to reinstall)"
elif [ "$IF_ROOT" -eq 1 ] && [ "$(id -u)" -ne 0 ]; then
  say "missing: ${missing[*]}; not root, so not installing: run \`sudo bash scripts/install-test-deps.sh\`"
  exit 0
else
  if [ "${#missing[@]}" -gt 0 ]; then
    say "missing: ${missing[*]}"
  else
    say "--force: reinstalling even though everything is present"
  fi
  have apt-get || die "apt-get not found: install ${PACKAGES[*]} with your package manager"
  if [ "$(id -u)" -ne 0 ] && [ "$DRY_RUN" -eq 0 ]; then
    have sudo || die "not root and sudo not found: run this script as root"
  fi

  # What exists before, so we only touch what this install brought.
  declare -A was_installed=() pids_before=()
  for p in "${PACKAGES[@]}"; do
    if pkg_installed "$p"; then was_installed[$p]=1; else was_installed[$p]=0; fi
  done
  for s in "${SERVICES[@]}"; do
    pids_before[$s]="$(daemon_pids "$s" | tr '\n' ' ')"
  done

  # Keep maintainer scripts from starting daemons (Debian policy-rc.d, exit 101 = "not allowed").
  POLICY_RC=/usr/sbin/policy-rc.d
  if [ ! -e "$POLICY_RC" ]; then
    say "installing a temporary $POLICY_RC so the packages do not start their services"
    if [ "$DRY_RUN" -eq 0 ]; then
      trap 'as_root rm -f "$POLICY_RC"; say "removed the temporary $POLICY_RC"' EXIT
    fi
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$POLICY_RC" >/dev/null
    as_root chmod 755 "$POLICY_RC"
  fi

  say "apt-get update"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  say "apt-get install ${PACKAGES[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"

  for s in "${SERVICES[@]}"; do
    newly_installed=0
    [ "${was_installed[$s]}" -eq 0 ] && newly_installed=1
    now="$(daemon_pids "$s" | tr '\n' ' ')"
    started=""
    for pid in $now; do
      case " ${pids_before[$s]} " in
        *" $pid "*) ;;
        *) started="$started $pid" ;;
      esac
    done
    if [ -n "$started" ]; then
      say "the install started $s (pids:$started): stopping it"
      if systemd_running; then as_root systemctl stop "$s" || true; fi
      as_root service "$s" stop || true
      sleep 1
      for pid in $started; do
        if kill -0 "$pid" 2>/dev/null; then
          say "killing leftover $s process $pid"
          as_root kill -TERM "$pid" 2>/dev/null || true
        fi
      done
    fi
    if [ "$newly_installed" -eq 1 ]; then
      say "disabling the $s system service (the tests run their own)"
      if systemd_running; then as_root systemctl disable "$s" >/dev/null 2>&1 || true; fi
      if have update-rc.d; then as_root update-rc.d "$s" disable >/dev/null 2>&1 || true; fi
    fi
  done
fi

# Final check: every program the tests need must be there now.
[ "$DRY_RUN" -eq 1 ] && exit 0
# airlock needs Node ^22.22.2 or >= 24.15 (@sigstore/verify 4; undici 8 alone needs 22.19). An older node gets a Node 24 from the
# npm registry beside it; this script cannot change the caller's PATH, so it
# says how to put it first.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); const c = +process.versions.node.split(".")[2]; process.exit(a > 24 || (a === 24 && b >= 15) || (a === 22 && (b > 22 || (b === 22 && c >= 2))) ? 0 : 1)' 2>/dev/null; then
  old="$(node --version 2>/dev/null || echo 'no node')"
  # shellcheck source=scripts/node24.sh
  source "$(dirname "$0")/node24.sh"
  die "airlock needs Node.js ^22.22.2 or >= 24.15 but this shell runs $old; Node 24 is now in $(dirname "$(command -v node)"): run \`export PATH=$(dirname "$(command -v node)"):\$PATH\` (or \`source scripts/node24.sh\`) and try again"
fi
say "ok: node $(node --version)"
bad=0
for b in "${BINARIES[@]}"; do
  if have "$b"; then
    say "ok: $b -> $(command -v "$b")"
  else
    say "MISSING: $b"
    bad=1
  fi
done
if [ -f "$DAV_EXT_MODULE" ]; then say "ok: $DAV_EXT_MODULE"; else say "MISSING: $DAV_EXT_MODULE"; bad=1; fi
[ "$bad" -eq 0 ] || die "some test dependencies are still missing"
say "versions: $(docker-registry --version 2>&1 | head -n1); $(skopeo --version 2>&1 | head -n1); $(nginx -v 2>&1 | head -n1); $(openssl version 2>&1 | head -n1); $(chromium --version 2>/dev/null | head -n1)"
