#!/usr/bin/env bash
# Browser tests of the dashboard: playwright-core (from the npm registry, pinned by
# package-lock.json) drives the system's Chromium (Debian's `chromium`; no browser download)
# against `baton` (BATON_BIN, or a fresh `cargo build -p baton-cli`) on a free port with a temporary data dir. Screenshots go to
# tests/ui/artifacts/. Any console error in the page fails the run.
set -euo pipefail
cd "$(dirname "$0")"
root="$(cd ../.. && pwd)"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ]; then
    echo "== installing chromium (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "chromium is missing: install Debian's package (sudo apt-get install chromium)" >&2
    exit 1
  fi
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "npm is missing: install Node.js 18 or newer (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

echo "== npm ci (playwright-core)"
npm ci --no-audit --no-fund --loglevel=error

if [ -n "${BATON_BIN:-}" ]; then
  baton="$BATON_BIN"
else
  echo "== building baton"
  (cd "$root" && cargo build -p baton-cli --locked --quiet)
  baton="$root/target/debug/baton"
fi

data_dir="$(mktemp -d)"
out="$(mktemp)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$data_dir" "$data_dir.log" "$out"
}
trap cleanup EXIT

# Port 0: the kernel picks a free port; baton prints the one "listening on" line.
# A failed completion callback is parked at once (no automatic retries), so the test can retry
# it from the page without waiting; a dead target answers within 2 s.
BATON_CALLBACK_MAX_RETRIES=0 BATON_CALLBACK_TIMEOUT_MS=2000 \
"$baton" serve --listen 127.0.0.1:0 --data-dir "$data_dir" >"$out" 2>"$data_dir.log" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  url="$(sed -n 's/^baton listening on //p' "$out")"
  [ -n "$url" ] && break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "baton did not start:" >&2
  cat "$data_dir.log" >&2
  exit 1
fi
for _ in $(seq 1 100); do
  node -e 'fetch(process.argv[1] + "/ready").then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$url" && break
  sleep 0.1
done

# Brokers with an alarm on, for the overview's alarms: one whose disk-free alarm is on from the
# start (disk_free_min of 1 PiB), one whose memory alarm goes on with its first message
# (memory_high_watermark of 1 byte).
extra_pids=()
extra_files=()
trap 'cleanup; for pid in "${extra_pids[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done; rm -rf "${extra_files[@]}"' EXIT
# start_broker KEY=value...: a broker with these settings; its URL in $started_url.
start_broker() {
  local dir
  dir="$(mktemp -d)"
  env "$@" "$baton" serve --listen 127.0.0.1:0 --data-dir "$dir/data" >"$dir.out" 2>"$dir.log" &
  extra_pids+=("$!")
  extra_files+=("$dir" "$dir.out" "$dir.log")
  started_url=""
  for _ in $(seq 1 100); do
    started_url="$(sed -n 's/^baton listening on //p' "$dir.out")"
    [ -n "$started_url" ] && break
    sleep 0.1
  done
  if [ -z "$started_url" ]; then
    echo "baton with $* did not start:" >&2
    cat "$dir.log" >&2
    exit 1
  fi
}
start_broker BATON_DISK_FREE_MIN=1125899906842624
low_url="$started_url"
start_broker BATON_MEMORY_HIGH_WATERMARK=1
memory_url="$started_url"
node -e '
const [base] = process.argv.slice(1);
const call = (method, path, body) => fetch(base + path, { method, headers: { "content-type": "application/json" }, body: JSON.stringify(body) })
  .then((r) => { if (!r.ok) throw new Error(`${method} ${path}: ${r.status}`); });
(async () => {
  for (let i = 0; i < 100; i += 1) {
    if ((await fetch(base + "/ready").catch(() => ({ ok: false }))).ok) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await call("PUT", "/v1/queues/backlog", {});
  await call("POST", "/v1/queues/backlog/messages", { messages: [{ body: "the first message" }] });
})().catch((error) => { console.error(error.message); process.exit(1); });
' "$memory_url"

# A broker with API keys, for the sign-in: two queues, and a key that may see only one.
admin_key="ui-admin-key-0123456789abcdef0123456789abcdef"
start_broker BATON_ADMIN_KEY="$admin_key"
keyed_url="$started_url"
keyed_key="$(node -e '
const [base, admin] = process.argv.slice(1);
const call = async (method, path, body) => {
  const r = await fetch(base + path, { method, headers: { "content-type": "application/json", authorization: `Bearer ${admin}` }, body: body && JSON.stringify(body) });
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
  return r.json();
};
(async () => {
  for (let i = 0; i < 100; i += 1) {
    if ((await fetch(base + "/ready").catch(() => ({ ok: false }))).ok) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await call("PUT", "/v1/queues/orders-1", {});
  await call("PUT", "/v1/queues/payroll", {});
  const key = await call("POST", "/v1/keys", { name: "watcher", permissions: [{ actions: ["send", "receive"], resources: ["queue:orders*"] }] });
  process.stdout.write(key.key);
})().catch((error) => { console.error(error.message); process.exit(1); });
' "$keyed_url" "$admin_key")"

mkdir -p artifacts
echo "== browser tests against $url (and $low_url with its disk alarm on, $memory_url with its memory alarm, $keyed_url with API keys)"
BATON_URL="$url" BATON_LOW_DISK_URL="$low_url" BATON_MEMORY_URL="$memory_url" \
BATON_KEYED_URL="$keyed_url" BATON_KEYED_KEY="$keyed_key" \
CHROMIUM="$(command -v chromium)" node --test --test-concurrency=1 dashboard.test.js
