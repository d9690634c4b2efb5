#!/usr/bin/env bash
# Baton's whole test suite: formatting, lints, then every unit, property and end-to-end test.
# Installs nothing beyond what cargo fetches; later suites that need Python or Chromium install
# them from here too.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
