#!/usr/bin/env bash
# End-to-end tests of Baton's Amazon SQS-compatible API with boto3 and the aws CLI.
#
#   tests/sqs/run.sh [pytest arguments...]     e.g. -k fifo, or tests/sqs/test_fifo.py
#
# Creates tests/sqs/.venv (python3 -m venv) if missing, installs requirements.txt into it,
# builds the baton binary unless BATON_BIN names one, and runs pytest on tests/sqs with
# SQS_TEST_WORKERS (4) workers in parallel, each with its own server.
# Exits with pytest's status; "no tests collected" (5) counts as a failure.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="$here/.venv"

if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv"
    python3 -m venv "$venv"
fi
# Reinstall only when requirements.txt changed since the last successful install.
stamp="$venv/.requirements.sha256"
want="$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    echo "== installing tests/sqs/requirements.txt"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    echo "$want" >"$stamp"
fi

if [ -z "${BATON_BIN:-}" ]; then
    echo "== cargo build -p baton-cli"
    (cd "$repo" && cargo build --quiet -p baton-cli)
    export BATON_BIN="$repo/target/debug/baton"
fi

cd "$repo"
# Run the whole suite unless the arguments name test files or node ids themselves.
targets=("$here")
for arg in "$@"; do
    if [ -e "${arg%%::*}" ]; then
        targets=()
        break
    fi
done
echo "== pytest ${targets[*]:-} $* (baton: $BATON_BIN)"
status=0
# Most of the suite waits on visibility timeouts and long polls, so workers in parallel (each
# with its own server, see conftest.py) save time even on two cores.
PYTHONDONTWRITEBYTECODE=1 "$venv/bin/python" -m pytest -q -p no:cacheprovider \
    -n "${SQS_TEST_WORKERS:-4}" ${targets[@]+"${targets[@]}"} "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
