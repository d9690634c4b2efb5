#!/usr/bin/env bash
# Baton's whole test suite: formatting, lints, every unit, property and end-to-end Rust test,
# then the SQS API suite with boto3 and the aws CLI (tests/sqs/run.sh creates its own Python
# virtual environment from PyPI the first time).
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
