#!/usr/bin/env bash
# Installs the system packages the tests use: Debian's sblim-wbemcli (a real CIM client).
# Idempotent; needs root to install (CI runs as root). Without root and without the
# package, it says so and the wbemcli tests skip; as root a missing wbemcli fails them
# (tests/server_helpers.py wbemcli_or_skip), so CI never skips them unseen.
set -euo pipefail
need=()
command -v wbemcli >/dev/null 2>&1 || need+=(sblim-wbemcli)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "system-deps: missing ${need[*]}; run 'make system-deps' as root" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
