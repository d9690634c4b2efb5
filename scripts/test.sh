#!/usr/bin/env bash
# Baton's whole test suite: formatting, lints, every unit, property and end-to-end Rust test,
# then the SQS API suite with boto3 and the aws CLI (tests/sqs/run.sh creates its own Python
# virtual environment from PyPI the first time), the runnable examples (examples/run-all.sh,
# likewise with examples/.venv), the alert rules with promtool, the dashboard in Chromium
# (tests/ui/run.sh), a one-minute soak with API keys and TLS (scripts/soak.sh) and a short run of
# every fuzz target (scripts/fuzz.sh; cargo-fuzz is installed from crates.io when missing).
# Debian's chromium, promtool and redis-server — the Redis Cluster engine's tests start their
# own cluster — are installed with apt-get when missing and running as root; playwright-core
# comes from npm by its lockfile.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  # The Redis Cluster engine's tests start their own 6-node cluster on free ports.
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing redis-server and redis-cli (apt-get install redis-server)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-server >/dev/null
  else
    echo "redis-server is missing: the Redis Cluster engine's tests need Redis 7 (sudo apt-get install redis-server)" >&2
    exit 1
  fi
fi
if ! command -v openssl >/dev/null 2>&1; then
  # The soak makes its CA and certificate with openssl.
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing openssl (apt-get install openssl)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openssl >/dev/null
  else
    echo "openssl is missing: the soak makes its TLS certificates with it (sudo apt-get install openssl)" >&2
    exit 1
  fi
fi
echo "== cargo test"
cargo test --workspace --locked
# The suites below run the `baton` binary that `cargo test` just built for the CLI's tests:
# building it again with `-p baton-cli` would resolve other dependency features and compile
# a second copy of half the dependency tree.
export BATON_BIN="$PWD/target/debug/baton"
export SQS_RUST_EXAMPLE_BIN="$PWD/target/debug/examples/sqs-order-processor"
for built in "$BATON_BIN" "$SQS_RUST_EXAMPLE_BIN"; do
  [ -x "$built" ] || { echo "cargo test did not build $built" >&2; exit 1; }
done
echo "== SQS API suite (boto3, aws CLI)"
tests/sqs/run.sh
echo "== runnable examples (examples/run-all.sh)"
examples/run-all.sh
echo "== Prometheus alert rules (promtool)"
deploy/prometheus/check.sh
echo "== dashboard in Chromium (playwright-core)"
tests/ui/run.sh
echo "== soak, one minute (scripts/soak.sh; the full run is 10 minutes)"
SOAK_SECONDS=60 scripts/soak.sh
# A short run of every fuzz target (nightly, cargo-fuzz): 10 s each, two at a time, about
# 65 s of fuzzing after the build, which dominates (measured on 2 shared cores: 11 minutes
# cold, seconds when fuzz/target is warm). The full run is `scripts/fuzz.sh` (60 s per
# target); see docs/security.md, "Fuzzing".
echo "== fuzzing (scripts/fuzz.sh, 10 s per target)"
FUZZ_SECONDS=10 scripts/fuzz.sh
