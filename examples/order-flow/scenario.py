"""An order flow with the messaging patterns of RabbitMQ and Kafka, on Baton.

Point-to-point work queue with competing consumers, publish/subscribe with AMQP routing-key
patterns, request/response with a correlation id and a timeout, retries with exponential
backoff into a dead-letter queue, scheduled re-processing by redrive, a rate- and concurrency-limited
consumer (push delivery) and a circuit breaker that holds messages while the downstream fails.
"""

from __future__ import annotations

import json
import threading
import time

from harness import Baton, Receiver, check, run_example, step, summary, wait_until

SETTINGS = {
    "push_breaker_failures": 3,
    "push_breaker_window_ms": 10_000,
    "push_breaker_cooldown_ms": 1_000,
    "tick_interval_ms": 20,
}


def point_to_point(baton: Baton) -> dict[str, int]:
    step("point-to-point: 200 orders, 2 competing consumers, each order to exactly one of them")
    baton.ok("PUT", "/v1/queues/orders", {"visibility_timeout_ms": 10_000})
    for start in (0, 100):
        baton.ok("POST", "/v1/queues/orders/messages",
                 {"messages": [{"body": f"order {n}"} for n in range(start, start + 100)]})
    got: dict[str, list[str]] = {"consumer-a": [], "consumer-b": []}

    def consume(name: str) -> None:
        idle = 0
        while idle < 3:
            batch = baton.ok("POST", "/v1/queues/orders/receive", {"max": 10, "wait_ms": 100})["messages"]
            idle = idle + 1 if not batch else 0
            if batch:
                got[name].extend(m["body"] for m in batch)
                baton.ok("POST", "/v1/queues/orders/ack", {"receipts": [m["receipt"] for m in batch]})
                time.sleep(0.005)  # some work, so the other consumer gets a share

    threads = [threading.Thread(target=consume, args=(name,)) for name in got]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    a, b = set(got["consumer-a"]), set(got["consumer-b"])
    check(len(got["consumer-a"]) + len(got["consumer-b"]) == 200, f"200 deliveries: {len(a)} + {len(b)}")
    check(not (a & b) and len(a | b) == 200, "no order went to both consumers, none was lost")
    stats = baton.ok("GET", "/v1/queues/orders")["stats"]
    check(stats["acked_total"] == 200 and stats["visible"] == 0 and stats["in_flight"] == 0, f"queue drained: {stats}")
    return {name: len(bodies) for name, bodies in got.items()}


def publish_subscribe(baton: Baton) -> dict[str, list[str]]:
    step("pub/sub: topic order-events fans out by routing-key pattern to queues and a stream")
    for queue in ("billing", "eu-shipping", "cancellations"):
        baton.ok("PUT", f"/v1/queues/{queue}")
    baton.ok("PUT", "/v1/streams/order-audit", {"partitions": 2})
    baton.ok("PUT", "/v1/topics/order-events")
    baton.cli("topic", "subscribe", "order-events", "billing", "--queue", "billing", "--pattern", "order.*.created")
    baton.ok("PUT", "/v1/topics/order-events/subscriptions/eu-shipping",
             {"target": {"queue": "eu-shipping"}, "pattern": "order.eu.#"})
    baton.ok("PUT", "/v1/topics/order-events/subscriptions/cancellations",
             {"target": {"queue": "cancellations"}, "pattern": "#.cancelled"})
    baton.ok("PUT", "/v1/topics/order-events/subscriptions/audit", {"target": {"stream": "order-audit"}})
    keys = ["order.eu.created", "order.us.created", "order.eu.cancelled", "order.eu.shipped.express", "order.us.cancelled"]
    answer = baton.ok("POST", "/v1/topics/order-events/publish",
                      {"messages": [{"routing_key": key, "body": key} for key in keys]})
    reached = [m["delivered_to"] for m in answer["messages"]]
    check(reached == [3, 2, 3, 2, 2], f"subscriptions reached per message: {reached}")
    one = baton.cli_json("publish", "order-events", "order.eu.created", "order 4711")
    check(one["messages"][0]["delivered_to"] == 3, f"`baton publish` fans out the same way: {one}")

    def bodies(queue: str) -> list[str]:
        batch = baton.ok("POST", f"/v1/queues/{queue}/receive", {"max": 100})["messages"]
        return sorted(m["body"] for m in batch)

    got = {q: bodies(q) for q in ("billing", "eu-shipping", "cancellations")}
    want = {
        "billing": sorted(["order.eu.created", "order.us.created", "order 4711"]),
        "eu-shipping": sorted(["order.eu.created", "order.eu.cancelled", "order.eu.shipped.express", "order 4711"]),
        "cancellations": sorted(["order.eu.cancelled", "order.us.cancelled"]),
    }
    check(got == want, f"each queue got what its pattern matches: {got}")
    audit = baton.ok("GET", "/v1/streams/order-audit")["stats"]["records"]
    check(audit == 6, f"the audit stream got every message: {audit}")
    got["order-audit"] = [f"{audit} records"]
    return got


def kafka_style_log(baton: Baton) -> dict:
    step("Kafka style: a keyed, partitioned order log; groups starting earliest and latest; manual commit (ack)")
    baton.ok("PUT", "/v1/streams/order-log", {"partitions": 3, "retention_ms": 7 * 24 * 3600 * 1000})
    records = [{"key": f"order-{n % 5}", "value": f"order-{n % 5} step {n // 5}", "headers": {"event": f"step-{n // 5}"}}
               for n in range(30)]
    baton.ok("POST", "/v1/streams/order-log/records", {"records": records})
    baton.ok("PUT", "/v1/streams/order-log/groups/billing", {"start": "earliest"})
    baton.ok("PUT", "/v1/streams/order-log/groups/late-audit", {"start": "latest"})
    baton.ok("POST", "/v1/streams/order-log/records", {"records": [{"key": "order-9", "value": "order-9 step 0"}]})

    read: list[dict] = []
    while batch := baton.ok("POST", "/v1/streams/order-log/groups/billing/read", {"consumer": "billing-1", "max": 100})["records"]:
        read += batch
    check(len(read) == 31, f"billing (earliest) reads every record: {len(read)}")
    for key in {r["key"] for r in read}:
        mine = [r for r in read if r["key"] == key]
        check(len({r["partition"] for r in mine}) == 1, f"{key} lives in one partition")
        steps = [int(r["value"].rsplit(" ", 1)[1]) for r in mine]
        check(steps == sorted(steps), f"{key}'s records in order: {steps}")
    check(all(r["headers"] == {"event": r["value"].replace(r["key"] + " step ", "step-")} for r in read if r["key"] != "order-9"),
          "headers travel with the records")
    pending = baton.ok("GET", "/v1/streams/order-log/groups/billing")["stats"]["pending"]
    check(pending == 31, f"read but not committed: {pending} pending")
    baton.ok("POST", "/v1/streams/order-log/groups/billing/ack", {"ids": [r["id"] for r in read]})
    committed = baton.ok("GET", "/v1/streams/order-log/groups/billing")["stats"]
    check(committed["pending"] == 0 and committed["lag_total"] == 0, f"committed: {committed}")
    late = baton.ok("POST", "/v1/streams/order-log/groups/late-audit/read", {"consumer": "audit-1", "max": 100})["records"]
    check([r["value"] for r in late] == ["order-9 step 0"], f"late-audit (latest) sees only what came after it: {late}")
    return {"records": len(read), "late": len(late)}


def request_response(baton: Baton) -> dict:
    step("request/response: a pricing service answers by correlation id; without it, the request times out")
    baton.ok("PUT", "/v1/queues/pricing")
    stop = threading.Event()

    def pricing_service() -> None:
        while not stop.is_set():
            batch = baton.ok("POST", "/v1/queues/pricing/receive", {"max": 1, "wait_ms": 100})["messages"]
            for m in batch:
                correlation = m["attributes"]["baton.correlation_id"]
                value = correlation["value"] if isinstance(correlation, dict) else correlation
                check(value == m["id"], "the correlation id is the request's message id")
                sku = m["body"].split()[-1]
                baton.ok("POST", "/v1/queues/pricing/ack",
                         {"receipts": [m["receipt"]], "reply": {"body": f"price of {sku}: 42.50 EUR"}})

    service = threading.Thread(target=pricing_service)
    service.start()
    try:
        answer = baton.ok("POST", "/v1/queues/pricing/request", {"body": "price sku-17", "timeout_ms": 5000})
        check(answer["reply"]["body"] == "price of sku-17: 42.50 EUR", f"the reply: {answer}")
        check(answer["correlation_id"] == answer["id"], f"correlation id = request id: {answer}")
        cli = baton.cli_json("request", "pricing", "price sku-18", "--timeout-ms", "5000")
        check(cli["reply"]["body"] == "price of sku-18: 42.50 EUR", f"`baton request`: {cli}")
    finally:
        stop.set()
        service.join()
    status, timed_out = baton.call("POST", "/v1/queues/pricing/request", {"body": "price sku-19", "timeout_ms": 300})
    check(status == 504 and timed_out["error"]["code"] == "request_timeout", f"no service, no reply: {status} {timed_out}")
    late = baton.ok("POST", "/v1/queues/pricing/receive", {"max": 1})["messages"][0]
    status, discarded = baton.call("POST", f"/v1/replies/{late['id']}", {"body": "too late"})
    check(status == 404 and discarded["error"]["code"] == "reply_not_expected", f"a late reply is discarded: {discarded}")
    return {"elapsed_ms": answer["elapsed_ms"]}


def retries_and_dead_letters(baton: Baton) -> dict:
    step("retries with backoff: a payment that keeps failing is retried after 200, 400, 800 ms (jitter: half to all of it), then dead-lettered")
    baton.ok("PUT", "/v1/queues/payments-dlq")
    baton.ok("PUT", "/v1/queues/payments", {
        "retry": {"base_delay_ms": 200, "max_delay_ms": 2000},
        "dead_letter": {"queue": "payments-dlq", "max_receive_count": 4},
    })
    sent = baton.ok("POST", "/v1/queues/payments/messages", {"messages": [{"body": "charge card 4242 EUR 99"}]})
    message_id = sent["messages"][0]["id"]
    received_at = []
    while len(received_at) < 4:
        batch = baton.ok("POST", "/v1/queues/payments/receive", {"max": 1, "wait_ms": 2000})["messages"]
        check(len(batch) == 1, f"attempt {len(received_at) + 1} arrives")
        received_at.append(time.monotonic())
        # The payment provider is down: give the message back; the queue's backoff applies.
        baton.ok("POST", "/v1/queues/payments/nack", {"receipts": [batch[0]["receipt"]]})
    gaps_ms = [int((b - a) * 1000) for a, b in zip(received_at, received_at[1:])]
    # Backoff is base × 2^(n−1) with jitter between half and all of it.
    for n, gap in enumerate(gaps_ms):
        check(gap >= 200 * 2**n // 2, f"retry {n + 1} waited at least half its backoff: {gaps_ms}")
    dlq = wait_until(lambda: baton.ok("GET", "/v1/queues/payments-dlq")["stats"]["visible"] == 1,
                     "the payment in the dead-letter queue")
    status = baton.ok("GET", f"/v1/queues/payments/messages/{message_id}")
    check(status["status"] == "DEAD_LETTERED", f"its status says so: {status['status']}")

    step("scheduled re-processing: the provider is back; a schedule sends a redrive job every second, a worker runs it")
    baton.ok("PUT", "/v1/queues/maintenance-jobs")
    baton.ok("PUT", "/v1/schedules/payments-redrive", {
        "cron": "* * * * * *", "target": {"queue": "maintenance-jobs"},
        "message": {"body": json.dumps({"job": "redrive", "queue": "payments-dlq"})}, "missed": "skip"})
    jobs = baton.ok("POST", "/v1/queues/maintenance-jobs/receive", {"max": 1, "wait_ms": 3000})["messages"]
    check(len(jobs) == 1, "the schedule sent a redrive job within a second or two")
    job = json.loads(jobs[0]["body"])
    check(jobs[0]["attributes"].get("baton.schedule") == "payments-redrive", f"from its schedule: {jobs[0]['attributes']}")
    moved = baton.ok("POST", f"/v1/queues/{job['queue']}/redrive", {})
    check(moved["moved"] == 1, f"the job's redrive moved the dead letter back: {moved}")
    baton.ok("POST", "/v1/queues/maintenance-jobs/ack", {"receipts": [jobs[0]["receipt"]]})
    baton.ok("POST", "/v1/schedules/payments-redrive/pause")
    batch = baton.ok("POST", "/v1/queues/payments/receive", {"max": 1, "wait_ms": 2000})["messages"]
    check(len(batch) == 1 and batch[0]["receive_count"] == 1, f"back with a fresh receive count: {batch}")
    baton.ok("POST", "/v1/queues/payments/ack", {"receipts": [batch[0]["receipt"]]})
    return {"gaps_ms": gaps_ms, "dlq": dlq}


def limited_consumer(baton: Baton) -> dict:
    step("a rate- and concurrency-limited consumer: push at most 10/s, 3 at a time, to a slow worker")
    n = 30
    with Receiver(delay_s=0.25) as worker:
        baton.ok("PUT", "/v1/queues/emails")
        baton.ok("POST", "/v1/queues/emails/messages", {"messages": [{"body": f"mail {i}"} for i in range(n)]})
        baton.ok("PUT", "/v1/queues/emails/push", {"url": worker.url + "/send", "concurrency": 3, "rate_per_s": 10})
        got = worker.wait_for(n, timeout_s=20)
        push = wait_until(lambda: (lambda p: p if p["stats"]["delivered_total"] == n else None)(
            baton.ok("GET", "/v1/queues/emails/push")), "every mail delivered")
        baton.ok("DELETE", "/v1/queues/emails/push")
    check(sorted(r.body.decode() for r in got) == sorted(f"mail {i}" for i in range(n)), "each mail once")
    check(worker.in_flight_max <= 3 and push["stats"]["in_flight_max_observed"] <= 3,
          f"never more than 3 at once: worker saw {worker.in_flight_max}, push {push['stats']}")
    arrivals = sorted(r.at for r in got)
    span_s = arrivals[-1] - arrivals[0]
    # 10/s: the 30 deliveries start at least 29 × 100 ms apart in all.
    check(span_s >= (n - 1) / 10 * 0.9, f"no faster than 10/s: {n} deliveries in {span_s:.2f} s")
    return {"in_flight_max": worker.in_flight_max, "rate": (n - 1) / span_s}


def circuit_breaker(baton: Baton) -> dict:
    step("circuit breaker: the warehouse answers 503; after 3 failures the breaker opens and orders wait in the queue")
    n = 20
    with Receiver(status=503) as warehouse:
        baton.ok("PUT", "/v1/queues/warehouse")
        baton.ok("PUT", "/v1/queues/warehouse/push", {"url": warehouse.url + "/reserve", "concurrency": 1})
        baton.ok("POST", "/v1/queues/warehouse/messages", {"messages": [{"body": f"reserve {i}"} for i in range(n)]})
        opened = wait_until(lambda: (lambda p: p if p["stats"]["breaker"] == "open" else None)(
            baton.ok("GET", "/v1/queues/warehouse/push")), "the breaker to open")
        tried = len(warehouse.requests())
        time.sleep(0.5)  # while open, nothing is sent to the warehouse
        check(len(warehouse.requests()) == tried, "no delivery while the breaker is open")
        stats = baton.ok("GET", "/v1/queues/warehouse")["stats"]
        check(stats["visible"] + stats["in_flight"] == n and stats["dead_lettered_total"] == 0,
              f"every order is still in the queue: {stats}")
        step("the warehouse recovers: a probe after the cool-down closes the breaker and the backlog drains")
        warehouse.status = 200
        warehouse.wait_for(n, status=200, timeout_s=15)
        closed = baton.ok("GET", "/v1/queues/warehouse/push")
        baton.ok("DELETE", "/v1/queues/warehouse/push")
    check(closed["stats"]["breaker"] == "closed" and closed["stats"]["breaker_opened_total"] >= 1, f"closed again: {closed}")
    delivered = sorted(r.body.decode() for r in warehouse.requests(200))
    check(delivered == sorted(f"reserve {i}" for i in range(n)), f"each order delivered once after recovery: {delivered}")
    metrics = baton.call("GET", "/metrics")[1]
    check("baton_push_breaker_opened_total" in metrics, "/metrics has the breaker")
    return {"failed_before_open": opened["stats"]["failed_total"], "opened": closed["stats"]["breaker_opened_total"]}


def main() -> None:
    with Baton(SETTINGS) as baton:
        shares = point_to_point(baton)
        routed = publish_subscribe(baton)
        log = kafka_style_log(baton)
        request = request_response(baton)
        retry = retries_and_dead_letters(baton)
        limited = limited_consumer(baton)
        breaker = circuit_breaker(baton)
        summary([
            f"point-to-point: 200 orders, each to one consumer ({shares['consumer-a']} + {shares['consumer-b']})",
            "pub/sub: " + ", ".join(f"{q} {len(v) if not q.endswith('audit') else v[0]}" for q, v in routed.items()),
            f"Kafka style: {log['records']} records keyed into 3 partitions, in order per key; "
            f"earliest group read {log['records']}, latest group {log['late']}; committed by ack",
            f"request/response: reply in {request['elapsed_ms']} ms by correlation id; no responder → 504 request_timeout",
            f"retries: backoff gaps {retry['gaps_ms']} ms, then dead-lettered; a schedule's redrive job → processed",
            f"limited consumer: 30 mails at {limited['rate']:.1f}/s (limit 10/s), at most {limited['in_flight_max']} in flight",
            f"circuit breaker: opened after {breaker['failed_before_open']} failures, 20 orders held, all delivered after recovery",
        ])


if __name__ == "__main__":
    run_example("order-flow", main)
