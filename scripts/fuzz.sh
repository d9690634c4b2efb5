#!/usr/bin/env bash
# Fuzzes every parser of untrusted or on-disk bytes with cargo-fuzz (libFuzzer, Rust nightly):
# the targets of fuzz/ (fuzz/src/lib.rs lists them and what each checks; docs/security.md,
# "Fuzzing").
#
# Installs cargo-fuzz when missing (`cargo install cargo-fuzz --locked`), builds every target,
# then runs each for FUZZ_SECONDS (default 60), FUZZ_JOBS (default 2) at a time, starting from
# its seed corpus fuzz/corpus/<target>/ (read only: what a run discovers goes to
# fuzz/target/corpus/<target>/, kept between runs but not in the repository). Fails on any
# crash, panic, timeout or out-of-memory, and prints where the input that caused it is
# (fuzz/artifacts/<target>/). At the end, a table per target: executions (libFuzzer's `#N`),
# coverage (`cov:`, edges) and features (`ft:`).
#
# What runs where:
#   CI (scripts/test.sh):  FUZZ_SECONDS=10: every target for 10 s, about 65 s of runs. The
#                          build dominates: measured on 2 shared cores (load 4-5), 681 s cold
#                          (fuzz/target empty, cargo-fuzz installed; its install is 2 min more),
#                          so the cold step is about 12.5 minutes, a warm one about 70 s.
#   The full run:          scripts/fuzz.sh (60 s per target: 313 s of runs, plus the build);
#                          longer hunts: FUZZ_SECONDS=3600 scripts/fuzz.sh, or one target by
#                          name: scripts/fuzz.sh wal_replay sqs_query.
#
# A crash is fixed in the product and its input kept in fuzz/regressions/<target>/, which the
# owning crate's `cargo test` replays (see fuzz/src/lib.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
FUZZ_JOBS="${FUZZ_JOBS:-2}"
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# The sanitizer is off: the product's crates forbid `unsafe`, so AddressSanitizer would only
# watch dependencies' unsafe code, at about half the executions per second. Panics, aborts,
# stack overflows, timeouts and memory limits are caught without it. `--debug-assertions`
# keeps overflow checks and debug assertions on.
BUILD_FLAGS=(--sanitizer none --debug-assertions)
# Per input: at most 10 s and 2 GiB; inputs up to 64 KiB (enough for nested query keys,
# batches and multi-segment logs).
RUN_FLAGS=(-timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "== installing cargo-fuzz (cargo install cargo-fuzz --locked)"
  cargo install cargo-fuzz --locked
fi
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "== installing the nightly toolchain (cargo-fuzz needs it)"
  rustup toolchain install nightly --profile minimal
fi

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

started=$SECONDS
echo "== building ${#targets[@]} fuzz targets"
(cd fuzz && cargo +nightly fuzz build "${BUILD_FLAGS[@]}")
built=$SECONDS

logs=fuzz/target/logs
mkdir -p "$logs"
run_one() {
  local target="$1"
  local work="fuzz/target/corpus/$target"
  mkdir -p "$work" "fuzz/artifacts/$target" "fuzz/corpus/$target"
  # libFuzzer stops itself after -max_total_time; `timeout` is the backstop should a run hang.
  (cd fuzz && timeout --kill-after=30 "$((FUZZ_SECONDS + 120))" \
    cargo +nightly fuzz run "${BUILD_FLAGS[@]}" "$target" \
      "../$work" "corpus/$target" -- \
      -max_total_time="$FUZZ_SECONDS" "${RUN_FLAGS[@]}" \
      -artifact_prefix="artifacts/$target/") >"$logs/$target.log" 2>&1
}

echo "== running each target for ${FUZZ_SECONDS}s, ${FUZZ_JOBS} at a time"
failed=()
pids=()
names=()
wait_one() {
  local pid="${pids[0]}" name="${names[0]}"
  pids=("${pids[@]:1}")
  names=("${names[@]:1}")
  if wait "$pid"; then
    echo "   $name: ok"
  else
    echo "   $name: FAILED (log: $logs/$name.log)"
    failed+=("$name")
  fi
}
for target in "${targets[@]}"; do
  if [ "${#pids[@]}" -ge "$FUZZ_JOBS" ]; then
    wait_one
  fi
  run_one "$target" &
  pids+=("$!")
  names+=("$target")
done
while [ "${#pids[@]}" -gt 0 ]; do
  wait_one
done

echo
echo "build: $((built - started)) s, runs: $((SECONDS - built)) s (${FUZZ_SECONDS} s per target, ${FUZZ_JOBS} at a time)"
printf '%-16s %14s %8s %8s %s\n' target executions cov ft result
for target in "${targets[@]}"; do
  log="$logs/$target.log"
  # The last status line: "#123456 DONE cov: 1234 ft: 5678 corp: ..." (or the last "pulse").
  line="$(grep -E '^#[0-9]+' "$log" | tail -n 1 || true)"
  execs="$(sed -nE 's/^#([0-9]+).*/\1/p' <<<"$line")"
  cov="$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$line")"
  ft="$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$line")"
  result=ok
  if [[ " ${failed[*]} " == *" $target "* ]]; then
    result=FAILED
  fi
  printf '%-16s %14s %8s %8s %s\n' "$target" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$result"
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo
  for target in "${failed[@]}"; do
    echo "== $target failed; the end of $logs/$target.log:"
    tail -n 40 "$logs/$target.log"
    for input in $(grep -oE 'artifacts/[a-z_]+/(crash|timeout|oom|leak)-[0-9a-f]+' "$logs/$target.log" | sort -u); do
      echo "crash input: fuzz/$input (replay: cd fuzz && cargo +nightly fuzz run ${BUILD_FLAGS[*]} $target $input)"
    done
  done
  exit 1
fi
