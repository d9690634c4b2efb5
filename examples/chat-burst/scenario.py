"""The microservices lab on Baton: a chat burst, an order backlog, a job on one server only.

1. A burst of 100,000 chat messages published to the topic `chat` reaches every live WebSocket
   subscriber (all of them, in order, none dropped) and the stream `chat-log` (every one of the
   100,000 stored, read back, none missing).
2. The order service keeps accepting orders while its worker is stopped (killed with orders in
   hand) and while the broker restarts; the backlog drains when the worker is back, every order
   processed.
3. Three servers start the same daily job; a lock held for the round lets exactly one run it
   (a fourth starting later skips too), and its fencing token guards what the job writes.
4. A sink archives `chat-log` into a PostgreSQL table while the burst goes on; the table ends
   with the 100,000, none missing, none twice (checked with SQL).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import websockets

from harness import Baton, check, run_example, step, summary, wait_until
from postgres import Postgres

HERE = Path(__file__).resolve().parent
BURST = 100_000
BATCH = 1_000
ROOMS = 10
SETTINGS = {
    # A live subscriber that falls behind has its excess dropped (live delivery is ephemeral);
    # the buffer holds the whole burst so a Python client on a busy CI machine keeps up.
    "live_buffer_messages": BURST,
    "tick_interval_ms": 20,
}


class Subscriber:
    """A live WebSocket subscriber of the topic, counting and ordering what it receives."""

    def __init__(self, name: str, url: str, pattern: str | None, expect: int):
        query = "?" + urllib.parse.urlencode({"pattern": pattern}) if pattern else ""
        self.name, self.url, self.expect = name, url.replace("http://", "ws://") + "/v1/topics/chat/ws" + query, expect
        self.numbers: list[int] = []
        self.dropped = 0
        self.connected = threading.Event()

    async def run(self) -> None:
        async with websockets.connect(self.url, max_queue=None) as ws:
            self.connected.set()
            while len(self.numbers) + self.dropped < self.expect:
                frame = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
                if frame["type"] == "message":
                    self.numbers.append(int(frame["body"].rsplit(" ", 1)[1]))
                else:
                    self.dropped += frame["dropped"]


def publish_burst(baton: Baton) -> float:
    """Publishes the burst in batches over one kept-alive connection; returns the seconds taken."""
    host = urllib.parse.urlsplit(baton.url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    started = time.monotonic()
    for first in range(0, BURST, BATCH):
        batch = [{"routing_key": f"room.{n % ROOMS}", "body": f"user-{n % 97} says hello {n}"} for n in range(first, first + BATCH)]
        conn.request("POST", "/v1/topics/chat/publish", json.dumps({"messages": batch}), {"content-type": "application/json"})
        answer = conn.getresponse()
        body = answer.read()
        check(answer.status == 200, f"publish answered {answer.status}: {body[:300]!r}")
        check(all(m["delivered_to"] == 1 for m in json.loads(body)["messages"]), "each message reached the stream")
    conn.close()
    return time.monotonic() - started


def chat_burst(baton: Baton, pg: Postgres) -> dict:
    step(f"chat burst: {BURST} messages to topic chat → 2 live WebSocket subscribers and the stream chat-log, "
         f"archived into PostgreSQL ({pg.table('chat_archive')}) by the sink chat-archive")
    baton.ok("PUT", "/v1/topics/chat")
    baton.ok("PUT", "/v1/streams/chat-log", {"partitions": 4})
    baton.ok("PUT", "/v1/topics/chat/subscriptions/archive", {"target": {"stream": "chat-log"}})
    baton.ok("PUT", "/v1/sinks/chat-archive", {"source": {"stream": "chat-log"},
                                              "postgres": {"url": pg.url, "table": pg.table("chat_archive")}})
    subscribers = [
        Subscriber("everything", baton.url, "room.#", BURST),
        Subscriber("room-3", baton.url, "room.3", BURST // ROOMS),
    ]

    async def receive_all() -> None:
        await asyncio.gather(*(s.run() for s in subscribers))

    tasks = threading.Thread(target=lambda: asyncio.run(receive_all()))
    tasks.start()
    for s in subscribers:
        check(s.connected.wait(10), f"{s.name} connected")
    wait_until(lambda: baton.ok("GET", "/v1/topics/chat")["stats"]["live_subscribers"] == len(subscribers), f"{len(subscribers)} live subscribers")

    started = time.monotonic()
    publish_s = publish_burst(baton)
    tasks.join(timeout=60)
    check(not tasks.is_alive(), "the subscribers received the burst: " +
          ", ".join(f"{s.name} {len(s.numbers)}" for s in subscribers))
    delivered_s = time.monotonic() - started
    for s in subscribers:
        want = [n for n in range(BURST) if s.name != "room-3" or n % ROOMS == 3]
        check(s.dropped == 0, f"{s.name}: nothing dropped ({s.dropped})")
        check(s.numbers == want, f"{s.name}: every message, in publish order ({len(s.numbers)} of {len(want)})")
    stats = baton.ok("GET", "/v1/topics/chat")["stats"]
    check(stats["live_dropped_total"] == 0, f"the topic dropped nothing: {stats}")

    step("read chat-log back: every one of the messages is stored, none missing, none twice")
    stored = [int(r["value"].rsplit(" ", 1)[1]) for r in baton.read_stream("chat-log")]
    check(sorted(stored) == list(range(BURST)), f"chat-log holds all {BURST}: {len(stored)} records, {len(set(stored))} distinct")
    return {"publish_s": publish_s, "delivered_s": delivered_s, "stored": len(stored), "subscribers": subscribers}


def archived(baton: Baton, pg: Postgres) -> dict:
    """Waits for the sink to catch up with chat-log, then checks the table with SQL."""
    step(f"the sink chat-archive catches up; SQL on {pg.table('chat_archive')}: all {BURST}, none missing, none twice")
    table = pg.table("chat_archive")
    # The sink's counters start again with the server (restarted above): the table tells.
    wait_until(lambda: baton.ok("GET", "/v1/sinks/chat-archive")["stats"]["lag"] == 0
               and int(pg.query(f"SELECT count(*) FROM {table}")[0][0]) >= BURST,
               "the sink to write every record of chat-log", 30, 0.2)
    sink = baton.ok("GET", "/v1/sinks/chat-archive")
    check(sink["state"] == "running" and sink["stats"]["last_error"] is None, f"the sink runs without an error: {sink}")
    # Each message's number is the last word of its body: the table holds every number 0..99999 once.
    (rows, ids, numbers, low, high), = pg.query(
        "SELECT count(*), count(DISTINCT id), count(DISTINCT split_part(value_text, ' ', 4)::int), "
        f"min(split_part(value_text, ' ', 4)::int), max(split_part(value_text, ' ', 4)::int) FROM {table}")
    check((rows, ids, numbers, low, high) == (str(BURST), str(BURST), str(BURST), "0", str(BURST - 1)),
          f"the table holds the {BURST} messages once each: count {rows}, distinct ids {ids}, "
          f"distinct messages {numbers}, numbers {low}..{high}")
    return {"rows": int(rows), "distinct": int(numbers)}


def start_worker(baton: Baton, log: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HERE / "order_worker.py"), baton.url, str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def order_backlog(baton: Baton, tmp: Path) -> dict:
    step("orders: the order service sends orders all along; its worker is killed, then the broker restarts")
    baton.ok("PUT", "/v1/queues/orders", {"visibility_timeout_ms": 1000})
    processed_log = tmp / "processed.log"
    worker = start_worker(baton, processed_log)
    accepted: list[int] = []
    refused: list[str] = []
    stop = threading.Event()

    def order_service() -> None:
        n = 0
        while not stop.is_set():
            try:
                status, answer = baton.call("POST", "/v1/queues/orders/messages", {"messages": [{"body": f"order {n}"}]}, timeout_s=5)
            except OSError as err:  # the broker is restarting: the service retries this order
                status, answer = 0, str(err)
            if status == 200:
                accepted.append(n)
                n += 1
            else:
                refused.append(f"{status} {answer}")
                time.sleep(0.05)
            time.sleep(0.02)

    service = threading.Thread(target=order_service)
    service.start()
    try:
        wait_until(lambda: len(accepted) >= 10 and processed_log.exists(), "the first orders processed", 15)
        worker.send_signal(signal.SIGKILL)  # the worker dies, maybe with orders in hand
        worker.wait()
        at_kill = len(accepted)
        wait_until(lambda: len(accepted) >= at_kill + 15, "orders accepted while the worker is down", 15)
        backlog_before_restart = baton.ok("GET", "/v1/queues/orders")["stats"]
        step(f"worker down, backlog {backlog_before_restart['visible'] + backlog_before_restart['in_flight']}; restarting the broker")
        baton.restart()
        at_restart = len(accepted)
        wait_until(lambda: len(accepted) >= at_restart + 5, "orders accepted after the broker restart", 15)
        backlog = baton.ok("GET", "/v1/queues/orders")["stats"]
        check(backlog["visible"] + backlog["in_flight"] >= 20, f"the backlog survived the restart: {backlog}")
    finally:
        stop.set()
        service.join()
    step(f"the worker is back: the backlog of {backlog['visible'] + backlog['in_flight']} drains")
    worker = start_worker(baton, processed_log)
    try:
        wait_until(lambda: (lambda s: s["visible"] + s["in_flight"] + s["delayed"] == 0)(
            baton.ok("GET", "/v1/queues/orders")["stats"]), "the backlog to drain", 20)
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=10)
    done = [int(line.split()[1]) for line in processed_log.read_text().split("\n") if line]
    check(set(done) == set(accepted), f"every accepted order processed: {len(set(done))} of {len(accepted)}, "
          f"missing {sorted(set(accepted) - set(done))[:10]}")
    return {"accepted": len(accepted), "processed": len(set(done)), "again": len(done) - len(set(done)),
            "backlog": backlog["visible"] + backlog["in_flight"], "refused": len(refused)}


def job_on_one_server(baton: Baton) -> dict:
    step("a daily job on 3 servers: a lock lets exactly one run it; its fencing token guards the write")
    baton.ok("PUT", "/v1/queues/job-reports")

    def server(name: str) -> str:
        env = dict(os.environ, BATON_URL=baton.url)
        got = subprocess.run([baton.binary, "lock", "acquire", "cleanup.daily", "--holder", name, "--ttl-ms", "10000"],
                             env=env, capture_output=True, text=True, timeout=30)
        if got.returncode != 0:
            check("lock_held" in got.stderr, f"{name}: refused because another server holds it: {got.stderr}")
            return ""
        token = json.loads(got.stdout)["token"]
        baton.ok("POST", "/v1/queues/job-reports/messages",
                 {"messages": [{"body": f"cleanup done by {name}"}], "fence": {"lock": "cleanup.daily", "token": token}})
        # Not released: the hold lasts the whole round (its TTL), so a server whose timer fires
        # a little later finds it held and skips. Releasing right after the job would let such
        # a server run the job a second time.
        return f"{name}:{token}"

    with ThreadPoolExecutor(3) as pool:
        ran = [r for r in pool.map(server, ["server-1", "server-2", "server-3"]) if r]
    check(len(ran) == 1, f"exactly one server ran the job: {ran}")
    reports = baton.ok("POST", "/v1/queues/job-reports/receive", {"max": 10})["messages"]
    check(len(reports) == 1, f"one report: {[m['body'] for m in reports]}")
    winner, token = ran[0].split(":")
    late = subprocess.run([baton.binary, "lock", "acquire", "cleanup.daily", "--holder", "server-4", "--ttl-ms", "10000"],
                          env=dict(os.environ, BATON_URL=baton.url), capture_output=True, text=True, timeout=30)
    check(late.returncode == 1 and "lock_held" in late.stderr, f"a server starting later in the round skips: {late.stderr}")
    # The round ends (the TTL would end it; here the winner releases): its token is dead, and
    # a write that still carries it is refused.
    baton.cli("lock", "release", "cleanup.daily", "--holder", winner, "--token", token)
    status, fenced = baton.call("POST", "/v1/queues/job-reports/messages",
                                {"messages": [{"body": "late write"}], "fence": {"lock": "cleanup.daily", "token": int(token)}})
    check(status == 409 and fenced["error"]["code"] == "fenced", f"a stale token is fenced: {status} {fenced}")
    return {"winner": winner, "token": token}


def main() -> None:
    # The schema is dropped after the server has stopped (the sink would create it again).
    with Postgres() as pg, Baton(SETTINGS) as baton:
        burst = chat_burst(baton, pg)
        orders = order_backlog(baton, Path(baton.data_dir).parent)
        job = job_on_one_server(baton)
        archive = archived(baton, pg)
        summary([
            f"chat burst: {BURST} messages published in {burst['publish_s']:.1f} s "
            f"({BURST / burst['publish_s']:.0f} msg/s), live delivery done at {burst['delivered_s']:.1f} s",
            "live WebSocket subscribers: " + ", ".join(f"{s.name} {len(s.numbers)}/{s.expect}" for s in burst["subscribers"]) + ", 0 dropped, in order",
            f"stream chat-log: {burst['stored']} records read back, none missing, none twice",
            f"orders: {orders['accepted']} accepted while the worker was killed and the broker restarted "
            f"(backlog {orders['backlog']}), all {orders['processed']} processed ({orders['again']} twice: in hand at the kill)",
            f"daily job: 3 servers at once and 1 later, ran once on {job['winner']} (token {job['token']}), stale token fenced",
            f"PostgreSQL archive of chat-log: {archive['rows']} rows, {archive['distinct']} distinct messages, "
            "none missing, none twice (count = count distinct = 100000, numbers 0..99999)",
        ])


if __name__ == "__main__":
    run_example("chat-burst", main)
