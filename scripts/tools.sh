#!/usr/bin/env bash
# Installs what building the app needs and is missing: clang (zstd-sys for wasm32), the wasm32
# target and every crate; `install_build_tools` adds Trunk and wasm-bindgen-cli from crates.io
# (never prebuilt binaries). Sourced by serve.sh and test.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/backfill-target}"
export PATH="$HOME/.cargo/bin:$PATH"

apt_install() {
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]} (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

apt_install clang
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

# Build tools need no fat LTO or single codegen unit (Trunk's own release profile): that halves
# their install on a cold machine, and they run as fast for what they do here.
install_tool() {
  CARGO_PROFILE_RELEASE_LTO=false CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
    cargo install "$@" --target-dir "$HOME/.cache/backfill-tools"
}

# Trunk and the wasm-bindgen-cli it runs, at the versions Trunk.toml and Cargo.lock pin.
install_build_tools() {
  local trunk_version bindgen_version
  trunk_version=$(sed -n 's/^# trunk \([0-9.]*\)$/\1/p' Trunk.toml)
  if ! trunk --version 2>/dev/null | grep -q "$trunk_version"; then
    # Without its default features: no TLS stack (ring, rustls) nor crates.io update check, which
    # an offline build (Trunk.toml) and a localhost server never use.
    echo "installing trunk $trunk_version (cargo install, ~7 min)"
    install_tool --locked trunk --version "$trunk_version" --no-default-features
  fi
  bindgen_version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
  if ! wasm-bindgen --version 2>/dev/null | grep -q "$bindgen_version"; then
    echo "installing wasm-bindgen-cli $bindgen_version (cargo install, ~3 min)"
    install_tool wasm-bindgen-cli --version "$bindgen_version"
  fi
}

# Trunk runs cargo offline (Trunk.toml): fetch every target's crates first.
cargo fetch --locked
