"""The event-delegation service (Spring Boot + Hazelcast) on Baton, through its own REST API.

Producers create events on `/api/events`, Baton's worker pool processes them, completion
callbacks reach a local receiver with the configured headers, a failing receiver leaves an
event in CALLBACK_FAILED with its callback on the retry queue until a manual retry delivers it,
and the performance test reports its rate. The service's documented curl lines are replayed
with curl, verbatim but for host and port (and the notification URL, which points at the local
receiver instead of example.com).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from harness import Baton, Receiver, check, quote, run_example, step, summary, wait_until

SETTINGS = {
    "events_workers": 8,
    "events_notification_ms": 10,
    "events_data_processing_ms": 50,
    "events_heavy_task_ms": 1500,
    "callback_max_retries": 2,
    "callback_retry_delay_ms": 1000,
}
PRODUCERS = 3
EVENTS_PER_PRODUCER = 40

# The service's README, line by line (host and port are replaced, and example.com by the
# local receiver). `<eventId>` is the id the first line created.
DOCUMENTED = [
    """curl -X POST "http://localhost:8080/api/events/advanced?eventType=NOTIFICATION&payload=%7B%22message%22%3A%22Hello%22%7D&notificationUrl=https%3A%2F%2Fexample.com%2Fnotification&callbackHeaders%5B'Content-Type'%5D=application%2Fjson\"""",
    """curl -X POST "http://localhost:8080/api/events/advanced?eventType=DATA_PROCESSING&payload=%7B%22orderId%22%3A%22123%22%7D&messageGroupId=order-processing\"""",
    """curl -X POST "http://localhost:8080/api/events/advanced?eventType=NOTIFICATION&payload=%7B%22message%22%3A%22Hello%22%7D&deduplicationId=msg-20230601-001\"""",
    """curl -X POST "http://localhost:8080/api/events/advanced?eventType=HEAVY_TASK&payload=%7B%22taskId%22%3A%22456%22%7D&maxRetries=5&retryDelayMs=10000\"""",
    """curl -X POST "http://localhost:8080/api/events/advanced?eventType=DATA_PROCESSING&payload=%7B%22fileId%22%3A%22789%22%7D&visibilityTimeoutMs=60000\"""",
    """curl -X POST "http://localhost:8080/api/events/advanced?eventType=HEAVY_TASK&payload=%7B%22jobId%22%3A%22abc123%22%7D&notificationUrl=https%3A%2F%2Fexample.com%2Fnotification&messageGroupId=job-processing&deduplicationId=job-abc123&maxRetries=5&retryDelayMs=10000&visibilityTimeoutMs=60000\"""",
]
RETRY_LINE = 'curl -X POST "http://localhost:8080/api/events/retry-callback/<eventId>"'


def documented_url(baton: Baton, line: str, receiver: Receiver) -> str:
    url = line.removeprefix('curl -X POST "').removesuffix('"')
    url = url.replace("http://localhost:8080", baton.url)
    return url.replace("https%3A%2F%2Fexample.com%2Fnotification", quote(receiver.url + "/notification"))


def post_event(baton: Baton, query: str) -> dict:
    return baton.ok("POST", f"/api/events{query}")


def event(baton: Baton, event_id: str) -> dict:
    return baton.ok("GET", f"/api/events/{event_id}")


def wait_status(baton: Baton, event_id: str, status: str, timeout_s: float = 15.0) -> dict:
    return wait_until(
        lambda: (lambda e: e if e["status"] == status else None)(event(baton, event_id)),
        f"event {event_id} to be {status}",
        timeout_s,
    )


def producers_and_workers(baton: Baton) -> int:
    step(f"{PRODUCERS} producers create {PRODUCERS * EVENTS_PER_PRODUCER} events; the worker pool processes them")
    types = ["NOTIFICATION", "DATA_PROCESSING", "NOTIFICATION"]

    def produce(producer: int) -> list[str]:
        return [
            post_event(baton, f"?eventType={types[producer]}&payload=producer-{producer}-event-{n}")["eventId"]
            for n in range(EVENTS_PER_PRODUCER)
        ]

    with ThreadPoolExecutor(PRODUCERS) as pool:
        ids = [i for batch in pool.map(produce, range(PRODUCERS)) for i in batch]
    check(len(set(ids)) == len(ids), "every created event has its own id")
    for event_id in ids:
        done = wait_status(baton, event_id, "COMPLETED")
        check(done["receiveCount"] == 1, f"{event_id} was processed once: {done}")
    return len(ids)


def documented_calls(baton: Baton, receiver: Receiver) -> str:
    step("the service's documented curl lines, replayed with curl")
    created = []
    for line in DOCUMENTED:
        status, answer = baton.curl("-X", "POST", documented_url(baton, line, receiver))
        check(status == 200, f"{line} answered {status}: {answer}")
        check(answer["duplicate"] is False, f"{line} created a new event: {answer}")
        created.append(answer)
    check([e["queue"] for e in created] == ["events", "events.fifo", "events", "events", "events", "events.fifo"],
          f"grouped events go to events.fifo: {[e['queue'] for e in created]}")
    # The same deduplication ids again: the original events answer, nothing new is created.
    for index in (2, 5):
        status, again = baton.curl("-X", "POST", documented_url(baton, DOCUMENTED[index], receiver))
        check(status == 200 and again["duplicate"] is True, f"repeat of a deduplicationId is a duplicate: {again}")
        check(again["eventId"] == created[index]["eventId"], "a duplicate answers the original event")
    for answer in created:
        wait_status(baton, answer["eventId"], "COMPLETED")
    # Both events with a notification URL reported to the receiver, the first one with the
    # header the README binds as callbackHeaders['Content-Type'].
    got = receiver.wait_for(2)
    by_id = {r.json()["id"]: r for r in got}
    first = by_id.get(created[0]["eventId"])
    check(first is not None, f"the first documented event's callback arrived: {[r.json() for r in got]}")
    check(first.headers.get("content-type") == "application/json", f"the callback carries Content-Type: {first.headers}")
    check(first.json()["status"] == "COMPLETED", f"the callback says COMPLETED: {first.json()}")
    check(created[5]["eventId"] in by_id, "the grouped, deduplicated HEAVY_TASK reported too")
    return created[0]["eventId"]


def message_groups(baton: Baton) -> int:
    step("message groups: two groups of 5 events each, processed in order within each group")
    groups = {g: [] for g in ("order-7", "order-8")}
    for n in range(5):
        for group, ids in groups.items():
            created = post_event(baton, f"/advanced?eventType=DATA_PROCESSING&payload={group}-step-{n}&messageGroupId={group}")
            check(created["messageGroupId"] == group and created["queue"] == "events.fifo", f"in events.fifo: {created}")
            ids.append(created["eventId"])
    for group, ids in groups.items():
        done = [wait_status(baton, i, "COMPLETED") for i in ids]
        times = [e["processedAt"] for e in done]
        check(times == sorted(times), f"group {group} was processed in creation order: {times}")
    return sum(len(ids) for ids in groups.values())


def deduplication(baton: Baton) -> None:
    step("deduplication: the same deduplicationId three times is one event, processed once")
    answers = [post_event(baton, "/advanced?eventType=NOTIFICATION&payload=charge-42&deduplicationId=charge-42") for _ in range(3)]
    check(len({a["eventId"] for a in answers}) == 1, f"one event id for one deduplicationId: {answers}")
    check([a["duplicate"] for a in answers] == [False, True, True], "the repeats say duplicate")
    done = wait_status(baton, answers[0]["eventId"], "COMPLETED")
    check(done["receiveCount"] == 1 and sum(h["event"] == "acked" for h in done["history"]) == 1, f"processed once: {done}")


def retries(baton: Baton) -> dict:
    step("retries: an event that fails every attempt, maxRetries=2, retryDelayMs=200, ends FAILED")
    created = post_event(baton, "/advanced?eventType=NOTIFICATION&payload=always-fail&maxRetries=2&retryDelayMs=200")
    failed = wait_status(baton, created["eventId"], "FAILED")
    history = failed["history"]
    # Receive counts 1..3 are the processing attempts; later receives only release the event
    # until the queue's dead-letter policy moves it (see docs/api.md, the event API).
    attempts = [h for h in history if h["event"] == "nacked" and h["receive_count"] <= 3]
    check(len(attempts) == 3, f"1 attempt + 2 retries failed before the event was dead-lettered: {history}")
    received = {h["receive_count"]: h["at"] for h in history if h["event"] == "received"}
    gaps = [received[a["receive_count"] + 1] - a["at"] for a in attempts[:2]]
    check(all(gap >= 195 for gap in gaps), f"each retry waited retryDelayMs=200: {gaps} ms")
    check(history[-1]["event"] == "dead_lettered", f"it ended dead-lettered: {history[-1]}")
    info = baton.ok("GET", "/api/events/queue-info")
    check(info["failedCount"] >= 1 and info["deadLetterQueueSize"] >= 1, f"queue-info counts it: {info}")
    return failed


def visibility(baton: Baton) -> int:
    step("visibility: a HEAVY_TASK in processing is hidden from another consumer for visibilityTimeoutMs")
    created = post_event(baton, "/advanced?eventType=HEAVY_TASK&payload=render-video&visibilityTimeoutMs=20000")
    wait_status(baton, created["eventId"], "PROCESSING")
    other = baton.ok("POST", "/v1/queues/events/receive", {"max": 10, "wait_ms": 200})
    check(other["messages"] == [], f"another consumer gets nothing while it is processed: {other}")

    def lease_left_ms():
        # The worker sets the event's lease right after it received it (a second call), so
        # wait for the lease to be the event's own rather than the queue's default 30 s.
        listed = baton.ok("GET", "/v1/queues/events/messages")["messages"]
        mine = [m for m in listed if m["id"] == created["eventId"] and m["state"] == "in_flight"]
        check(len(mine) == 1, f"the event is in flight: {listed}")
        left = mine[0]["until"] - int(time.time() * 1000)
        return left if left <= 20_000 else None

    hidden_ms = wait_until(lease_left_ms, "the lease of visibilityTimeoutMs", 1.0)
    check(15_000 < hidden_ms <= 20_000, f"its lease ends visibilityTimeoutMs after the receive: {hidden_ms} ms left")
    wait_status(baton, created["eventId"], "COMPLETED")
    return hidden_ms


def failing_callback(baton: Baton) -> dict:
    step("a failing receiver: CALLBACK_FAILED, automatic callback retries, parked, then a manual retry")
    with Receiver(status=500) as failing:
        query = (f"/advanced?eventType=NOTIFICATION&payload=invoice-9&notificationUrl={quote(failing.url + '/hook')}"
                 "&callbackHeaders%5BX-Token%5D=s3cret")
        event_id = post_event(baton, query)["eventId"]
        wait_status(baton, event_id, "CALLBACK_FAILED")
        info = baton.ok("GET", "/api/events/queue-info")
        check(info["callbackFailedCount"] == 1, f"queue-info counts the failed callback: {info}")
        check(info["callbackRetryQueueSize"] == 1, f"its callback waits on the callback retry queue: {info}")
        wait_until(lambda: baton.ok("GET", "/api/events/queue-info")["callbackParkedCount"] == 1,
                   "the callback to be parked after its automatic retries", 10)
        attempts = failing.requests()
        check(len(attempts) == 3, f"1 attempt + callback_max_retries=2 automatic retries: {len(attempts)}")
        check(all(r.headers.get("x-token") == "s3cret" for r in attempts), "every attempt carries the callback headers")
        listed = baton.cli_json("callbacks", "list")["callbacks"]
        check([c["id"] for c in listed] == [event_id], f"`baton callbacks list` shows it: {listed}")
        check("500" in listed[0]["reason"], f"with the reason: {listed[0]}")

        failing.status = 200  # the receiver is repaired; a person presses "retry"
        line = RETRY_LINE.replace("<eventId>", event_id).removeprefix('curl -X POST "').removesuffix('"')
        status, answer = baton.curl("-X", "POST", line.replace("http://localhost:8080", baton.url))
        check(status == 200 and answer["success"] is True and answer["status"] == "COMPLETED", f"manual retry: {answer}")
        check(len(failing.requests(200)) == 1, "the manual retry delivered the callback")
        info = baton.ok("GET", "/api/events/queue-info")
        check(info["callbackFailedCount"] == 0 and info["callbackParkedCount"] == 0, f"nothing left to retry: {info}")
        status, again = baton.curl("-X", "POST", line.replace("http://localhost:8080", baton.url))
        check(status == 409 and again["error"]["code"] == "callback_not_failed", f"a second retry has nothing to do: {again}")
        return {"attempts": len(attempts) + 1}


def performance_test(baton: Baton) -> dict:
    step("the performance test: 1000 NOTIFICATION events")
    status, report = baton.curl("-X", "POST", f"{baton.url}/api/events/performance-test?count=1000&eventType=NOTIFICATION")
    check(status == 200, f"performance test answered {status}: {report}")
    check(report["processed"] == 1000 and report["failed"] == 0 and report["timedOut"] is False, f"all processed: {report}")
    check(sum(b["processed"] for b in report["timeline"]) == 1000, "the timeline counts every event once")
    return report


def main() -> None:
    with Baton(SETTINGS) as baton, Receiver() as receiver:
        status, server = baton.curl(f"{baton.url}/api/events/server-info")
        check(status == 200 and server["workers"] == SETTINGS["events_workers"], f"server-info: {server}")
        produced = producers_and_workers(baton)
        documented_calls(baton, receiver)
        grouped = message_groups(baton)
        deduplication(baton)
        failed = retries(baton)
        hidden_ms = visibility(baton)
        callback = failing_callback(baton)
        report = performance_test(baton)
        metrics = baton.call("GET", "/metrics")[1]
        check('baton_callbacks_total{outcome="failed"}' in metrics, "/metrics counts failed callbacks")
        info = baton.ok("GET", "/api/events/queue-info")
        summary([
            f"server {server['serverId']} on {server['hostName']}, {server['workers']} workers",
            f"{produced} events from {PRODUCERS} producers: all COMPLETED, each processed once",
            f"{len(DOCUMENTED)} documented curl lines + 1 retry line: all answered as documented",
            f"{grouped} grouped events: in order within each group; 3 creates with one deduplicationId: 1 event",
            f"failing event: FAILED after {failed['receiveCount']} receives (3 processing attempts), dead-letter queue {info['deadLetterQueueSize']}",
            f"visibility: hidden from another consumer while processed, {hidden_ms / 1000:.1f} s of its 20 s lease left",
            f"failing receiver: CALLBACK_FAILED, 1 attempt + 2 automatic retries failed, parked; manual retry delivered "
            f"(attempt {callback['attempts']})",
            f"performance test: {report['processed']} events in {report['elapsedMs']} ms = {report['eventsPerSecond']:.0f} events/s, "
            f"p99 {report['latencyMs']['p99']} ms",
            f"queue-info: processed {info['processedCount']}, failed {info['failedCount']}, callback failed {info['callbackFailedCount']}",
        ])


if __name__ == "__main__":
    run_example("event-delegation", main)
