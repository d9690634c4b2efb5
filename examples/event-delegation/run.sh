#!/usr/bin/env bash
# Runs this example (see README.md beside it). BATON_BIN may name a baton binary; otherwise
# `cargo build -p baton-cli` builds one.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec "$here/../lib/run-example.sh" "$here"
