#!/usr/bin/env bash
# Baton's whole test suite: formatting, lints, every unit, property and end-to-end Rust test,
# then the SQS API suite with boto3 and the aws CLI (tests/sqs/run.sh creates its own Python
# virtual environment from PyPI the first time), the runnable examples (examples/run-all.sh,
# likewise with examples/.venv), the alert rules with promtool, and the
# dashboard in Chromium (tests/ui/run.sh; Debian's chromium and promtool are installed with
# apt-get when missing and running as root, playwright-core comes from npm by its lockfile).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== cargo test"
cargo test --workspace --locked
echo "== SQS API suite (boto3, aws CLI)"
tests/sqs/run.sh
echo "== runnable examples (examples/run-all.sh)"
examples/run-all.sh
echo "== Prometheus alert rules (promtool)"
deploy/prometheus/check.sh
echo "== dashboard in Chromium (playwright-core)"
tests/ui/run.sh
