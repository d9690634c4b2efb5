#!/usr/bin/env bash
# Soak: SOAK_SECONDS (default 600) of mixed load on one broker with API keys and TLS on (a CA
# and certificate made here with openssl; every client trusts it with --cacert) — senders
# and consumers over the native API and the framed protocol (each with a key of its own),
# and refused requests (a wrong key, a missing permission) all along — while the broker's resident memory
# and open files are sampled every SOAK_SAMPLE_S (default 10) seconds. Fails when either
# grows after the warm-up (the first fifth of the run): RSS by more than a fifth plus 32 MiB,
# open files by more than 32. Loopback only; every load loop is bounded by the run's time.
#
#   scripts/soak.sh                    # the full 10 minutes (docs/benchmarks.md)
#   SOAK_SECONDS=60 scripts/soak.sh    # what the test suite runs
#
# BATON_BIN: the binary to soak (default: target/release/baton, else target/debug/baton).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${SOAK_SECONDS:-600}"
sample_s="${SOAK_SAMPLE_S:-10}"
baton="${BATON_BIN:-}"
if [ -z "$baton" ]; then
  if [ -x target/release/baton ]; then baton=target/release/baton; else baton=target/debug/baton; fi
fi
[ -x "$baton" ] || { echo "soak: no baton binary at $baton (cargo build first, or set BATON_BIN)" >&2; exit 1; }
(( seconds >= 30 )) || { echo "soak: SOAK_SECONDS must be at least 30" >&2; exit 1; }
command -v openssl >/dev/null || { echo "soak: needs openssl for its certificates (apt-get install -y openssl)" >&2; exit 1; }

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A private CA and the broker's certificate for 127.0.0.1, as an operator would make them.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=soak-ca \
  -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=baton \
  -keyout "$work/key.pem" -out "$work/cert.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$work/san.ext"
openssl x509 -req -in "$work/cert.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
  -days 2 -extfile "$work/san.ext" -out "$work/cert.pem" 2>/dev/null
export BATON_CACERT="$work/ca.pem"

admin="soak-admin-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
BATON_ADMIN_KEY="$admin" \
  "$baton" serve --listen 127.0.0.1:0 --wire-listen auto --data-dir "$work/data" \
  --tls-cert-file "$work/cert.pem" --tls-key-file "$work/key.pem" \
  >"$work/out" 2>"$work/log" &
server=$!
pids+=("$server")
url=""
for _ in $(seq 1 200); do
  url="$(sed -n 's/^baton listening on //p' "$work/out")"
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { echo "soak: baton did not start" >&2; cat "$work/log" >&2; exit 1; }
for _ in $(seq 1 200); do
  curl -fsS --cacert "$work/ca.pem" "$url/ready" >/dev/null 2>&1 && break
  sleep 0.1
done

as_admin() { "$baton" --url "$url" --key "$admin" "$@"; }
key_of() { sed -n 's/.*"key": *"\(bk_[^"]*\)".*/\1/p'; }
for q in soak-native soak-wire; do as_admin queue create "$q" >/dev/null; done
native_key="$(as_admin key create --name native --allow 'send,receive:queue:soak-native' | key_of)"
wire_key="$(as_admin key create --name wire --allow 'send,receive:queue:soak-wire' | key_of)"
[ -n "$native_key" ] && [ -n "$wire_key" ] || { echo "soak: cannot create keys" >&2; exit 1; }

load_s=$(( seconds - 5 ))
bench() {
  local key="$1"; shift
  "$baton" --url "$url" --key "$key" bench e2e --duration-s "$load_s" --messages 100000000 "$@" \
    >>"$work/bench.out" 2>>"$work/bench.err" &
  pids+=("$!")
}
# The native API with single sends over HTTPS, and the framed protocol over TLS (an auth
# frame per connection) with batches, each with a key of its own; each bounded by the run's time.
bench "$native_key" --queue soak-native --api native --producers 4 --consumers 2 --batch 1 --rate 300
bench "$wire_key" --queue soak-wire --api wire --producers 2 --consumers 2 --batch 10 --rate 2000
# Refused requests all along: a wrong key, and a key without the permission.
(
  end=$(( $(date +%s) + load_s ))
  while (( $(date +%s) < end )); do
    curl -s -o /dev/null --cacert "$work/ca.pem" -H "authorization: Bearer bk_wrong" "$url/v1/queues" || true
    curl -s -o /dev/null --cacert "$work/ca.pem" -H "authorization: Bearer $wire_key" -X DELETE "$url/v1/queues/soak-native" || true
    sleep 0.05
  done
) &
pids+=("$!")

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$server/status"; }
open_files() { ls "/proc/$server/fd" | wc -l; }
samples="$work/samples"
start=$(date +%s)
printf '%8s %10s %6s\n' "t_s" "rss_mib" "fds" | tee "$samples.txt"
while (( $(date +%s) - start < seconds )); do
  sleep "$sample_s"
  kill -0 "$server" 2>/dev/null || { echo "soak: the broker died" >&2; tail -20 "$work/log" >&2; exit 1; }
  t=$(( $(date +%s) - start ))
  rss=$(rss_kib)
  fds=$(open_files)
  echo "$t $rss $fds" >>"$samples"
  awk -v t="$t" -v r="$rss" -v f="$fds" 'BEGIN { printf "%8d %10.1f %6d\n", t, r / 1024, f }' | tee -a "$samples.txt"
done

warm=$(( seconds / 5 ))
awk -v warm="$warm" '
  $1 >= warm && !seen { base_rss = $2; base_fds = $3; seen = 1 }
  { last_rss = $2; last_fds = $3; if ($2 > max_rss) max_rss = $2 }
  END {
    if (!seen) { print "soak: no sample after the warm-up"; exit 1 }
    rss_limit = base_rss * 1.2 + 32768
    printf "after warm-up: rss %.1f MiB -> %.1f MiB (peak %.1f, limit %.1f); open files %d -> %d\n",
      base_rss / 1024, last_rss / 1024, max_rss / 1024, rss_limit / 1024, base_fds, last_fds
    if (last_rss > rss_limit) { print "soak: resident memory grew"; exit 1 }
    if (last_fds > base_fds + 32) { print "soak: open files grew"; exit 1 }
  }' "$samples"

# Every bench run ended by itself, within its time, with nothing lost.
for pid in "${pids[@]:1:2}"; do wait "$pid" || { echo "soak: a load run failed" >&2; cat "$work/bench.err" >&2; exit 1; }; done
grep -E "msg/s|sent|received" "$work/bench.out" | head -20 || true
echo "soak: ok ($seconds s)"
