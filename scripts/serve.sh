#!/usr/bin/env bash
# Builds the app (installing what is missing) and serves it on http://127.0.0.1:8080/.
# DEV=1 serves the dev build: quicker to build the first time, slower to run.
set -euo pipefail
source "$(dirname "$0")/tools.sh"
install_build_tools
profile=(--release)
[ "${DEV:-0}" = 1 ] && profile=()
exec trunk serve "${profile[@]}" --address 127.0.0.1 --port "${PORT:-8080}"
