#!/usr/bin/env bash
# Times the README's test command as a fresh machine runs it: a clone of COMMIT (default HEAD)
# with an empty cargo home (Trunk and wasm-bindgen-cli built again), target dir, pip cache and
# venv, under WORK (default /tmp/backfill-cold). The toolchain (rustup) and apt packages are
# this machine's. Each output line is stamped with the minutes since the start; the last says
# the exit status. scripts/cold_run.sh [COMMIT] > cold.log
set -uo pipefail
commit=$(git -C "$(dirname "$0")/.." rev-parse "${1:-HEAD}")
work=${WORK:-/tmp/backfill-cold}
rm -rf "$work" && mkdir -p "$work/home/.cargo/bin"
rustup_bin=$(command -v rustup)
for tool in cargo rustc rustup rustdoc; do ln -s "$rustup_bin" "$work/home/.cargo/bin/$tool"; done
git clone -q "$(dirname "$0")/.." "$work/repo" && git -C "$work/repo" checkout -q "$commit"
# Only what a CI machine would have: no cargo bin of this machine on PATH, no warm caches.
passed=(LANG TERM SSL_CERT_FILE SSL_CERT_DIR NODE_EXTRA_CA_CERTS GIT_SSL_CAINFO CURL_CA_BUNDLE PIP_FIND_LINKS PIP_CERT PIP_INDEX_URL REQUESTS_CA_BUNDLE)
environment=(HOME="$work/home" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}" CARGO_HOME="$work/home/.cargo"
  PATH="$work/home/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" PYTHONUNBUFFERED=1)
for name in "${passed[@]}"; do [ -n "${!name:-}" ] && environment+=("$name=${!name}"); done
start=$(date +%s)
(cd "$work/repo" && env -i "${environment[@]}" bash .ci/run 2>&1) |
  while IFS= read -r line; do printf '[%3d min] %s\n' $(( ($(date +%s) - start) / 60 )) "$line"; done
status=${PIPESTATUS[0]}
echo "[$(( ($(date +%s) - start) / 60 )) min] exit $status"
exit "$status"
