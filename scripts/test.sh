#!/usr/bin/env bash
# Runs every test: native unit and integration tests, the parity suite against real dbt-core +
# dbt-duckdb, a short run of every fuzz target, wasm-bindgen tests, and the browser tests of the
# app in headless Chromium.
# Installs what is missing (apt: clang, python3-venv, chromium, chromium-driver; cargo: trunk,
# wasm-bindgen-cli; a cached Python venv with dbt).
set -euo pipefail
source "$(dirname "$0")/tools.sh"
command -v python3 >/dev/null || apt_install python3 python3-venv
command -v npm >/dev/null || apt_install npm
apt_install chromium chromium-driver
# axe-core (npm) for the browser tests' accessibility audit, cached beside the build.
axe="$HOME/.cache/backfill-npm/node_modules/axe-core/axe.min.js"
[ -f "$axe" ] || npm install --prefix "$HOME/.cache/backfill-npm" --no-audit --no-fund --loglevel=error axe-core@4.14.1

echo "== native tests"
cargo test --locked

echo "== parity with dbt-duckdb"
# The binary `cargo test` built for the CLI tests: `cargo build` would compile it again (without
# the dev-dependencies' features), ~2.5 min on a cold machine.
python3 tests/parity/run.py --backfill "$CARGO_TARGET_DIR/debug/backfill"

echo "== fuzzing: each target 20 s (scripts/fuzz.sh; a finding is saved to fuzz/regressions/ and fails)"
scripts/fuzz.sh 20

echo "== engine paths that differ on wasm (wasm-bindgen-test in headless Chromium)"
CHROMEDRIVER=/usr/bin/chromedriver CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  WASM_BINDGEN_TEST_TIMEOUT=300 cargo test --locked --target wasm32-unknown-unknown --test wasm

# The browser tests drive the dev build, which shares its compiled crates with the wasm tests
# above (a cold release build alone takes ~18 min); RELEASE=1 drives `trunk build --release`.
if [ "${RELEASE:-0}" = 1 ]; then
  echo "== the app: release build, then browser tests in headless Chromium"
  dist="$CARGO_TARGET_DIR/dist-release"
  trunk build --release --dist "$dist"
else
  echo "== the app: dev build, then browser tests in headless Chromium"
  dist="$CARGO_TARGET_DIR/dist-dev"
  trunk build --dist "$dist"
fi
python3 tests/browser/run.py --dist "$dist" --backfill "$CARGO_TARGET_DIR/debug/backfill" --axe "$axe"
