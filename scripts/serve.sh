#!/usr/bin/env bash
# Builds the app (installing what is missing) and serves it on http://127.0.0.1:8080/.
set -euo pipefail
source "$(dirname "$0")/tools.sh"
exec trunk serve --release --address 127.0.0.1 --port "${PORT:-8080}"
