#!/usr/bin/env bash
# Runs every test: native unit and integration tests, the parity suite against real dbt-core +
# dbt-duckdb, a short run of every fuzz target, and the browser tests of the app in headless
# Chromium.
# Installs what is missing (apt: clang, python3-venv, chromium, chromium-driver; cargo: trunk,
# wasm-bindgen-cli; a cached Python venv with dbt).
# On 2 cores a build keeps both busy only part of the time (one large crate at a time, a link),
# so what needs no cargo lock runs beside the builds: Trunk and wasm-bindgen-cli install (their
# own target directory) while the native tests build, and the app builds while the parity suite
# runs. Their output is shown when they end. What has time limits (fuzzing, the browser) runs
# alone.
set -euo pipefail
source "$(dirname "$0")/tools.sh"
command -v python3 >/dev/null || apt_install python3 python3-venv
command -v npm >/dev/null || apt_install npm
apt_install chromium chromium-driver
# axe-core (npm) for the browser tests' accessibility audit, cached beside the build.
axe="$HOME/.cache/backfill-npm/node_modules/axe-core/axe.min.js"
[ -f "$axe" ] || npm install --prefix "$HOME/.cache/backfill-npm" --no-audit --no-fund --loglevel=error axe-core@4.14.1

logs="$CARGO_TARGET_DIR/test-logs"
mkdir -p "$logs"
declare -A running=()
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
beside() {
  local name=$1
  shift
  "$@" > "$logs/$name.log" 2>&1 &
  running[$name]=$!
}
finish() {
  local name=$1 status=0
  wait "${running[$name]}" || status=$?
  echo "== $name (ran beside the steps above)"
  cat "$logs/$name.log"
  [ "$status" = 0 ] || { echo "$name failed (exit $status)"; exit "$status"; }
}

# Trunk and wasm-bindgen-cli: the app builds with them after the native tests.
beside tools install_build_tools

echo "== native tests"
cargo test --locked

finish tools
# The browser tests drive the dev build (a cold release build alone takes ~18 min);
# RELEASE=1 drives `trunk build --release`.
dist="$CARGO_TARGET_DIR/dist-dev"
release=()
if [ "${RELEASE:-0}" = 1 ]; then
  dist="$CARGO_TARGET_DIR/dist-release"
  release=(--release)
fi
beside app trunk build "${release[@]}" --dist "$dist"

echo "== parity with dbt-duckdb"
# The binary `cargo test` built for the CLI tests: `cargo build` would compile it again (without
# the dev-dependencies' features), ~2.5 min on a cold machine.
python3 tests/parity/run.py --backfill "$CARGO_TARGET_DIR/debug/backfill"

finish app

echo "== fuzzing: each target 20 s (scripts/fuzz.sh; a finding is saved to fuzz/regressions/ and fails)"
scripts/fuzz.sh 20

echo "== browser tests in headless Chromium"
python3 tests/browser/run.py --dist "$dist" --backfill "$CARGO_TARGET_DIR/debug/backfill" --axe "$axe"
