#!/usr/bin/env bash
# Runs one example: `examples/lib/run-example.sh <example dir>` finds or builds the baton
# binary and the Python environment (lib/env.sh), then runs the example's scenario.py, which
# starts its own Baton server and exits non-zero when a check fails.
set -euo pipefail
example="$(cd "$1" && pwd)"
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
exec "$PYTHON" "$example/scenario.py"
