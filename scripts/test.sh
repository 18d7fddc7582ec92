#!/usr/bin/env bash
# Runs every test: native unit and integration tests, the engine's wasm32 build check, and the
# parity suite against real dbt-core + dbt-duckdb. Installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backfill-target}"

need_apt=()
command -v clang >/dev/null || need_apt+=(clang)          # zstd-sys for wasm32
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

echo "== native tests"
cargo test --locked

echo "== engine builds for wasm32"
cargo check --locked --lib --target wasm32-unknown-unknown

echo "== parity with dbt-duckdb"
cargo build --locked --bin backfill
python3 tests/parity/run.py --backfill "$CARGO_TARGET_DIR/debug/backfill"
