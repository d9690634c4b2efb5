#!/usr/bin/env bash
# Runs every example under examples/ (each directory with a run.sh), one after the other, each
# bounded by EXAMPLE_TIMEOUT_S (default 60 s), and prints one line per example with its time.
# Exits non-zero if any example fails or runs out of time.
#
#   examples/run-all.sh                    every example
#   examples/run-all.sh chat-burst ...     only these
#
# BATON_BIN may name a baton binary; otherwise `cargo build -p baton-cli` builds one once.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/lib/env.sh"
timeout_s="${EXAMPLE_TIMEOUT_S:-60}"

if [ "$#" -gt 0 ]; then
    names=("$@")
else
    names=()
    for run in "$here"/*/run.sh; do
        names+=("$(basename "$(dirname "$run")")")
    done
fi

failed=()
results=()
started_all=$SECONDS
for name in "${names[@]}"; do
    echo "== example $name"
    started=$SECONDS
    status=0
    timeout --kill-after=10 "$timeout_s" "$here/$name/run.sh" || status=$?
    took=$((SECONDS - started))
    if [ "$status" -eq 0 ]; then
        results+=("ok      $name (${took} s)")
    elif [ "$status" -eq 124 ]; then
        results+=("TIMEOUT $name (over ${timeout_s} s)")
        failed+=("$name")
    else
        results+=("FAILED  $name (exit $status, ${took} s)")
        failed+=("$name")
    fi
done

echo "== examples: ${#names[@]} run in $((SECONDS - started_all)) s"
printf '   %s\n' "${results[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "error: failed examples: ${failed[*]}" >&2
    exit 1
fi
