#!/bin/bash
# Instructions the server executes per message in the end-to-end batch-100 workload (2
# producers, 2 consumers, 1 KiB bodies, fsync always), counted by callgrind: unlike seconds,
# instruction counts do not move when other work shares the machine. Two runs with different
# message counts are differenced, so start-up and idle cost cancel out.
# Usage: cargo build --release -p baton-cli && bench/instructions.sh   (needs valgrind)
#        API=wire bench/instructions.sh   (the same over the wire protocol; default: native)
#        WORKLOAD=single API=native|sqs|wire bench/instructions.sh   (single-message sends only:
#        4 producers with 16 sends in flight each, one message per request, the way most
#        clients send; instructions per send)
#        KEYS=1 ...        with an API key on the server and every request carrying it
#        TLS=1 ...         over TLS (HTTPS, the framed protocol on TLS), a CA made with openssl
#        ENCRYPTION=1 ...  with encryption at rest (a key file from `baton storage keygen`)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${B:-target/release/baton}
API=${API:-native}
WORKLOAD=${WORKLOAD:-e2e}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
serve_flags=(); client_flags=(); scheme=http; server_env=()
if [ "${KEYS:-0}" = 1 ]; then
  key="bk_instructions_$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
  server_env+=("BATON_ADMIN_KEY=$key"); client_flags+=(--key "$key")
fi
if [ "${TLS:-0}" = 1 ]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
    -keyout "$work/ca.key" -out "$work/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=baton \
    -keyout "$work/key.pem" -out "$work/cert.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$work/san.ext"
  openssl x509 -req -in "$work/cert.csr" -CA "$work/ca.pem" -CAkey "$work/ca.key" -CAcreateserial \
    -days 2 -extfile "$work/san.ext" -out "$work/cert.pem" 2>/dev/null
  serve_flags+=(--tls-cert-file "$work/cert.pem" --tls-key-file "$work/key.pem")
  client_flags+=(--cacert "$work/ca.pem"); scheme=https
fi
if [ "${ENCRYPTION:-0}" = 1 ]; then
  "$B" storage keygen --key-file "$work/baton.keys" >/dev/null 2>&1
  serve_flags+=(--encryption-key-file "$work/baton.keys")
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
run() {
  local n=$1 port
  port=$(free_port)
  env "${server_env[@]}" valgrind --tool=callgrind --callgrind-out-file="$work/$n.out" \
    "$B" serve --listen "127.0.0.1:$port" --data-dir "$work/data-$n" "${serve_flags[@]}" > "$work/$n.log" 2>&1 &
  local server=$!
  for _ in $(seq 1 300); do curl -sfk -o /dev/null "$scheme://127.0.0.1:$port/ready" && break; sleep 0.2; done
  if [ "$WORKLOAD" = single ]; then
    "$B" "${client_flags[@]}" bench produce --url "$scheme://127.0.0.1:$port" --api "$API" --producers 4 --inflight 16 \
      --batch 1 --messages "$n" --duration-s 300 --no-progress --json > "$work/$n.json"
  else
    "$B" "${client_flags[@]}" bench e2e --url "$scheme://127.0.0.1:$port" --api "$API" --producers 2 --consumers 2 --batch 100 \
      --messages "$n" --duration-s 120 --no-progress --json > "$work/$n.json"
  fi
  kill -INT "$server"; wait "$server" || true
  grep -E "^(summary|totals):" "$work/$n.out" | head -1 | awk '{print $2}'
}
small=$(run 10000)
large=$(run 30000)
python3 - "$small" "$large" "$work" "$WORKLOAD" <<'PY'
import json, sys
small, large, work, workload = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
field, unit = ("sent", "send") if workload == "single" else ("acked", "message")
done = [json.load(open(f"{work}/{n}.json"))[field] for n in (10000, 30000)]
print(f"server instructions: {small:,} for 10,000 messages, {large:,} for 30,000 "
      f"({field} {done[0]:,} and {done[1]:,}) -> {(large - small) / 20000:,.0f} per {unit}")
PY
callgrind_annotate "$work/30000.out" 2>/dev/null | grep -E "^ *[0-9,]+ \(" | head -12
