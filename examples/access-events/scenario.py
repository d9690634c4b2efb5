"""Access-event streaming (the Redis Streams service) on Baton.

Producers at three gates append access events to the stream `access-events` (keyed by user,
so one user's events keep their order; idempotent, so a retried batch lands once). A consumer
group `dispatcher` shares them out to two listeners that dispatch each event to the handler
of its type and acknowledge it. A third listener dies with events in hand; after it has been
idle long enough, a surviving listener claims its pending events and finishes them. Mid-way
the broker goes down: the listeners notice, stop consuming, check its health periodically and
resume by themselves once it is back, with nothing lost or handled twice.

A sink archives the stream into PostgreSQL (through a local TCP proxy the example controls);
the daily summary by category is SQL on that table, checked against what the gates sent.
Then PostgreSQL goes out of reach (the proxy stops): the sink goes to `retrying`, Baton keeps
accepting events, and once the proxy is back the sink catches up, nothing missing or twice.

Not yet: the daily cleanup as a schedule waits for schedules (see README.md). The 60-day
retention of stream entries is configured on the stream.
"""

from __future__ import annotations

import collections
import datetime
import json
import threading
import time
import urllib.error
import urllib.request

from harness import Baton, ExampleFailed, check, run_example, step, summary, wait_until
from postgres import Postgres, TcpProxy

GATES = 3
BATCHES_PER_GATE = 10
BATCH = 50
TYPES = ["LOGIN", "LOGOUT", "DOOR_OPEN", "ACCESS_DENIED"]
SIXTY_DAYS_MS = 60 * 24 * 3600 * 1000
GROUP = "/v1/streams/access-events/groups/dispatcher"
SINK = "/v1/sinks/access-archive"
OUTAGE_BATCHES = 2  # per gate, appended while PostgreSQL is out of reach
SETTINGS = {
    "tick_interval_ms": 20,
    # A sink out of reach of PostgreSQL retries after 100 ms, doubling up to 1 s (30 s by
    # default), so that this example sees it catch up soon after the proxy is back.
    "sink_retry_base_ms": 100,
    "sink_retry_max_ms": 1000,
}
# The events happened over the last three days (the `at` header); the summary is per day.
TODAY = datetime.datetime.now(datetime.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)


def event_of(gate: int, n: int) -> dict:
    kind = TYPES[(gate + n) % len(TYPES)]
    # Uneven over the days (3 of every 7 events today), so that the per-day counts differ.
    at = TODAY - datetime.timedelta(days=(n % 7) % 3) + datetime.timedelta(seconds=37 * n + gate)
    return {"key": f"user-{n % 40}", "value": f"{kind} gate-{gate} event-{gate}-{n}",
            "headers": {"type": kind, "at": at.isoformat().replace("+00:00", "Z")}}


def append_batches(baton: Baton, batches: range) -> list[dict]:
    """Each gate appends its batches ``batches`` (one thread per gate); returns the records sent."""
    sent: list[dict] = []
    lock = threading.Lock()

    def gate(g: int) -> None:
        for b in batches:
            records = [event_of(g, b * BATCH + i) for i in range(BATCH)]
            body = {"records": records, "producer_id": f"gate-{g}", "sequence": b}
            first = baton.ok("POST", "/v1/streams/access-events/records", body)
            if b == 3:  # the answer was lost on the way: the gate sends the same batch again
                again = baton.ok("POST", "/v1/streams/access-events/records", body)
                check(again == first, "a retried batch answers the original offsets")
            with lock:
                sent.extend(records)

    threads = [threading.Thread(target=gate, args=(g,)) for g in range(GATES)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check(len(sent) == GATES * len(batches) * BATCH, f"every gate appended its batches: {len(sent)} events")
    return sent


def produce(baton: Baton) -> tuple[collections.Counter, list[dict]]:
    step(f"{GATES} gates append {GATES * BATCHES_PER_GATE * BATCH} access events (idempotent producers)")
    sent = append_batches(baton, range(BATCHES_PER_GATE))
    produced = collections.Counter(r["headers"]["type"] for r in sent)
    stats = baton.ok("GET", "/v1/streams/access-events")["stats"]
    check(stats["records"] == GATES * BATCHES_PER_GATE * BATCH, f"every event appended once: {stats['records']}")
    # One user's events are in one partition, in the order each gate appended them.
    by_partition = collections.defaultdict(list)
    for r in baton.read_stream("access-events"):
        by_partition[r["partition"]].append((r["key"], r["value"]))
    for partition, values in by_partition.items():
        for user in {key for key, _ in values}:
            for g in range(GATES):
                mine = [int(v.rsplit("-", 1)[1]) for key, v in values if key == user and f" gate-{g} " in v]
                check(mine == sorted(mine), f"{user}'s events from gate {g} in order in partition {partition}")
        check(len({key for key, _ in values} & {k for p, vs in by_partition.items() if p != partition for k, _ in vs}) == 0,
              f"partition {partition}'s users are in no other partition")
    return produced, sent


class Listener:
    """A consumer of the group: dispatch by type, ack; on a backend failure, stop and wait."""

    def __init__(self, baton: Baton, name: str):
        self.baton, self.name = baton, name
        self.handled: collections.Counter = collections.Counter()
        self.ids: set[str] = set()
        self.outages = 0
        self.unacked: list[str] = []
        self.last_error = ""
        self.again = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run)

    def handle(self, record: dict) -> None:
        handlers = {kind: self.handled.update for kind in TYPES}
        handlers[record["headers"]["type"]]([record["headers"]["type"]])

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.baton.url + "/ready", timeout=1) as answer:
                return answer.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def run(self) -> None:
        while not self.stop.is_set() or self.unacked:
            try:
                if self.unacked:
                    self.baton.ok("POST", f"{GROUP}/ack", {"ids": self.unacked}, timeout_s=5)
                    self.unacked = []
                if self.stop.is_set():
                    break
                read = self.baton.ok("POST", f"{GROUP}/read", {"consumer": self.name, "max": 20, "wait_ms": 100}, timeout_s=5)
                for record in read["records"]:
                    if record["id"] not in self.ids:  # idempotent: an event seen before is not handled again
                        self.handle(record)
                        self.ids.add(record["id"])
                    else:
                        self.again += 1
                    self.unacked.append(record["id"])
            except (OSError, ExampleFailed) as error:
                # The backend is down (no connection, or 503 while it recovers): stop consuming,
                # check its health every 200 ms, resume.
                self.outages += 1
                self.last_error = str(error)
                while not self.stop.is_set() and not self.healthy():
                    time.sleep(0.2)


def sink_state(baton: Baton) -> dict:
    return baton.ok("GET", SINK)


def archive_through_outage(baton: Baton, pg: Postgres, proxy: TcpProxy, sent: list[dict]) -> dict:
    """PostgreSQL out of reach mid-way: the sink retries, Baton accepts, the sink catches up."""
    table = pg.table("access_events")
    step(f"the sink access-archive has the {len(sent)} events in {table}; PostgreSQL goes out of reach (the proxy stops)")
    wait_until(lambda: sink_state(baton)["stats"]["lag"] == 0 and pg.query(f"SELECT count(*) FROM {table}") == [[str(len(sent))]],
               f"the {len(sent)} events in the table", 20, 0.1)
    before = sink_state(baton)
    check(before["state"] == "running", f"the sink runs: {before}")
    proxy.stop()
    step(f"Baton keeps accepting events: {GATES} gates append {GATES * OUTAGE_BATCHES * BATCH} more; the sink is retrying")
    more = append_batches(baton, range(BATCHES_PER_GATE, BATCHES_PER_GATE + OUTAGE_BATCHES))
    total = len(sent) + len(more)
    check(baton.ok("GET", "/v1/streams/access-events")["stats"]["records"] == total, f"the stream holds all {total} events")
    retrying = wait_until(lambda: (lambda s: s if s["state"] == "retrying" else None)(sink_state(baton)),
                          "the sink to be retrying", 15, 0.05)
    check(isinstance(retrying["stats"]["last_error"], str) and retrying["stats"]["lag"] > 0,
          f"retrying says why and how many events wait: {retrying}")
    # Out of reach for a while: the sink keeps trying (100 ms, 200 ms, 400 ms, ... apart).
    wait_until(lambda: sink_state(baton)["stats"]["errors_total"] >= before["stats"]["errors_total"] + 3,
               "the sink to try 3 times", 15, 0.05)
    in_table = int(pg.query(f"SELECT count(*) FROM {table}")[0][0])
    check(in_table == len(sent), f"the events sent meanwhile are not in the table yet: {in_table} rows")
    step("the proxy is back: the sink resumes by itself and catches up")
    proxy.start()
    back = wait_until(lambda: (lambda s: s if s["state"] == "running" and s["stats"]["lag"] == 0 else None)(sink_state(baton)),
                      "the sink to run again with lag 0", 20, 0.1)
    check(back["stats"]["last_error"] is None, f"no error left: {back}")
    rows = [value for value, in pg.query(f"SELECT value_text FROM {table}")]
    want = sorted(r["value"] for r in sent + more)
    check(sorted(rows) == want, f"the table holds every event sent, once: {len(rows)} rows, {len(set(rows))} distinct, "
          f"{len(set(want) - set(rows))} missing")
    (count, distinct), = pg.query(f"SELECT count(*), count(DISTINCT value_text) FROM {table}")
    check(count == distinct == str(total), f"count {count} = count distinct {distinct} = {total}")
    return {"during": len(more), "rows": int(count), "distinct": int(distinct), "in_table_during": in_table,
            "errors": back["stats"]["errors_total"] - before["stats"]["errors_total"], "sent": sent + more}


def daily_summary(pg: Postgres, sent: list[dict]) -> list[list[str]]:
    """The summary by day and category, with SQL on the archive, checked against what was sent."""
    step("daily summary by category: SQL GROUP BY day and event type on the archive")
    rows = pg.query(
        "SELECT to_char((headers->>'at')::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, "
        f"headers->>'type' AS category, count(*) FROM {pg.table('access_events')} GROUP BY 1, 2 ORDER BY 1, 2")
    want = collections.Counter((r["headers"]["at"][:10], r["headers"]["type"]) for r in sent)
    got = {(day, kind): int(n) for day, kind, n in rows}
    check(got == dict(want), f"the SQL summary = what the gates sent: {got} vs {dict(want)}")
    days = sorted({day for day, _ in want})
    lines = [f"{'day':<10} " + " ".join(f"{k:>13}" for k in TYPES)]
    lines += [f"{day:<10} " + " ".join(f"{want[(day, k)]:>13}" for k in TYPES) for day in days]
    return lines


def daily_cleanup(baton: Baton, pg: Postgres) -> list[str]:
    """The 60-day cleanup as a schedule: 03:00 in Seoul every day, a job message to a queue a
    worker consumes. Fired once now (`POST .../fire`) instead of waiting for 03:00."""
    step("daily cleanup: a schedule at 03:00 Asia/Seoul sends the cleanup job to queue maintenance")
    baton.ok("PUT", "/v1/queues/maintenance", {})
    job = {"job": "cleanup", "stream": "access-events", "older_than_days": 60}
    baton.ok("PUT", "/v1/schedules/access-cleanup", {
        "cron": "0 3 * * *", "timezone": "Asia/Seoul", "target": {"queue": "maintenance"},
        "message": {"body": json.dumps(job)}, "missed": "once"})
    shown = baton.ok("GET", "/v1/schedules/access-cleanup")
    fires = [datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc) for ms in shown["next_fires"]]
    check(len(fires) == 5, f"five next fire times: {shown['next_fires']}")
    # 03:00 in Seoul (UTC+9, no daylight saving) is 18:00 UTC the day before, one day apart.
    check(all((f.hour, f.minute, f.second) == (18, 0, 0) for f in fires), f"each at 18:00 UTC: {fires}")
    check(all((b - a) == datetime.timedelta(days=1) for a, b in zip(fires, fires[1:])), "one a day")
    baton.ok("POST", "/v1/schedules/access-cleanup/fire")
    received = baton.ok("POST", "/v1/queues/maintenance/receive", {"max": 10, "wait_ms": 5000})["messages"]
    check(len(received) == 1, f"the firing sent one job: {len(received)}")
    message = received[0]
    check(json.loads(message["body"]) == job, f"the job: {message['body']}")
    check(message["attributes"].get("baton.schedule") == "access-cleanup",
          f"it names its schedule: {message['attributes']}")
    step("the worker runs the job: archived rows and pending entries older than 60 days go")
    table = pg.table("access_events")
    before = int(pg.query(f"SELECT count(*) FROM {table}")[0][0])
    deleted = pg.query(
        f"WITH gone AS (DELETE FROM {table} WHERE (headers->>'at')::timestamptz < now() - interval '60 days' "
        "RETURNING 1) SELECT count(*) FROM gone")[0][0]
    after = int(pg.query(f"SELECT count(*) FROM {table}")[0][0])
    pending = baton.ok("GET", f"{GROUP}/pending?max=1000")["pending"]
    stale = [p for p in pending if p["idle_ms"] > SIXTY_DAYS_MS]
    check(before - after == int(deleted) == 0, f"every archived event is from the last three days: {deleted} deleted")
    check(stale == [], f"no pending entry is 60 days old: {stale}")
    baton.ok("POST", "/v1/queues/maintenance/ack", {"receipts": [message["receipt"]]})
    state = baton.ok("GET", "/v1/schedules/access-cleanup")
    check(state["last_outcome"]["manual"] is True and state["last_outcome"]["ok"] is True,
          f"the firing is the schedule's last outcome: {state['last_outcome']}")
    return [f"daily cleanup scheduled at 03:00 Asia/Seoul (next: {fires[0]:%Y-%m-%d %H:%M} UTC), "
            f"fired once now: the worker deleted {deleted} rows and {len(stale)} pending entries older than 60 days"]


def main() -> None:
    # Exits in reverse: the server stops first, then the proxy, then the schema is dropped.
    with Postgres() as pg, TcpProxy(pg.host, pg.port) as proxy, Baton(SETTINGS) as baton:
        baton.ok("PUT", "/v1/streams/access-events", {"partitions": 3, "retention_ms": SIXTY_DAYS_MS})
        baton.ok("PUT", GROUP, {"start": "earliest", "session_timeout_ms": 1000})
        baton.ok("PUT", SINK, {"source": {"stream": "access-events"}, "flush_ms": 50,
                               "postgres": {"url": pg.url_via("127.0.0.1", proxy.port), "table": pg.table("access_events")}})
        produced, sent = produce(baton)
        total = sum(produced.values())

        step("listener-3 reads 60 events and dies before handling them")
        dead = baton.ok("POST", f"{GROUP}/read", {"consumer": "listener-3", "max": 60})["records"]
        check(len(dead) == 60, f"listener-3 got 60: {len(dead)}")

        step("listener-1 and listener-2 dispatch by type; the broker restarts mid-way")
        listeners = [Listener(baton, "listener-1"), Listener(baton, "listener-2")]
        for listener in listeners:
            listener.thread.start()
        wait_until(lambda: sum(len(l.ids) for l in listeners) >= total // 3, "a third of the events handled")
        baton.restart()
        wait_until(lambda: (lambda s: s["lag_total"] == 0 and s["pending"] == len(dead))(baton.ok("GET", GROUP)["stats"]),
                   "the group to read and ack everything but listener-3's events", 20)
        for listener in listeners:
            listener.stop.set()
            listener.thread.join()

        step("listener-1 claims listener-3's events, idle for over 1 s, and finishes them")
        time.sleep(1.0)
        claimed = baton.ok("POST", f"{GROUP}/claim", {"consumer": "listener-1", "min_idle_ms": 1000, "max": 100})["records"]
        claimed_ids = {r["id"] for r in claimed}
        check({r["id"] for r in dead} <= claimed_ids, f"the dead listener's events were claimed: {len(claimed)}")
        check(all(r["delivery_count"] >= 2 for r in claimed if r["id"] in {d["id"] for d in dead}), "their delivery count went up")
        for record in claimed:
            if record["id"] not in listeners[0].ids:
                listeners[0].handle(record)
                listeners[0].ids.add(record["id"])
        baton.ok("POST", f"{GROUP}/ack", {"ids": sorted(claimed_ids)})
        check(baton.ok("GET", GROUP)["stats"]["pending"] == 0, "nothing pending")

        handled = sum((l.handled for l in listeners), collections.Counter())
        ids = [i for l in listeners for i in l.ids]
        check(len(ids) == len(set(ids)) == total, f"each event handled by one listener, once: {len(ids)} of {total}")
        check(handled == produced, f"handled by type = produced by type: {dict(handled)} vs {dict(produced)}")
        check(any(l.outages >= 1 for l in listeners), f"the listeners saw the outage: {[l.outages for l in listeners]}")
        stream = baton.ok("GET", "/v1/streams/access-events")
        check(stream["attributes"]["retention_ms"] == SIXTY_DAYS_MS, f"60-day retention: {stream['attributes']}")
        archive = archive_through_outage(baton, pg, proxy, sent)
        days = daily_summary(pg, archive["sent"])
        cleanup = daily_cleanup(baton, pg)
        summary([
            f"{total} access events from {GATES} gates, each appended once (a retried batch answered its offsets)",
            "dispatched by type: " + ", ".join(f"{k} {handled[k]}" for k in TYPES),
            f"listener-1 {len(listeners[0].ids)}, listener-2 {len(listeners[1].ids)} (including {len(dead)} claimed from the dead listener-3)",
            f"broker restart: listeners stopped, checked health, resumed by themselves "
            f"(outages seen: {[l.outages for l in listeners]}, "
            f"events delivered again and skipped: {sum(l.again for l in listeners)}); lag 0, pending 0",
            f"PostgreSQL archive (sink access-archive, across the broker restart): {archive['rows']} rows, "
            f"{archive['distinct']} distinct = every event sent, none missing, none twice",
            f"PostgreSQL out of reach: sink retrying ({archive['errors']} failed attempts), {archive['during']} events "
            f"accepted meanwhile (table at {archive['in_table_during']}), caught up once the proxy was back",
            "daily summary by category (SQL, = what the gates sent):",
            *(f"  {line}" for line in days),
            "stream entries kept 60 days (retention_ms)",
            *cleanup,
        ])


if __name__ == "__main__":
    run_example("access-events", main)
