"""Four consumers drain 2,000 messages: none is lost, none is delivered twice while its lease
holds (the visibility timeout is far longer than the test)."""

import threading
import time
from collections import Counter

import pytest

from conftest import queue_attributes, send_bodies, unique_name

MESSAGES = 2000
CONSUMERS = 4
DEADLINE_S = 60


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_four_consumers_drain_2000_messages_exactly_once(client_factory, protocol):
    admin = client_factory(protocol)
    url = admin.create_queue(QueueName=unique_name("drain"),
                             Attributes={"VisibilityTimeout": "120"})["QueueUrl"]
    bodies = [f"message {i:04d}" for i in range(MESSAGES)]
    sent_ids = send_bodies(admin, url, bodies)
    assert len(set(sent_ids)) == MESSAGES

    received = Counter()
    bodies_seen = Counter()
    lock = threading.Lock()
    errors = []
    deadline = time.monotonic() + DEADLINE_S

    def consume():
        client = client_factory(protocol)
        try:
            while time.monotonic() < deadline:
                with lock:
                    if len(received) >= MESSAGES:
                        return
                msgs = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=1).get("Messages", [])
                if not msgs:
                    continue
                with lock:
                    for m in msgs:
                        received[m["MessageId"]] += 1
                        bodies_seen[m["Body"]] += 1
                resp = client.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)])
                if resp.get("Failed"):
                    raise AssertionError(f"delete failed: {resp['Failed']}")
        except Exception as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=consume, name=f"consumer-{i}") for i in range(CONSUMERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S + 30)
    assert not errors, errors
    duplicates = {k: v for k, v in received.items() if v > 1}
    assert not duplicates, f"{len(duplicates)} messages delivered more than once"
    assert set(received) == set(sent_ids), f"lost {len(set(sent_ids) - set(received))} messages"
    assert set(bodies_seen) == set(bodies)
    attrs = queue_attributes(admin, url, "ApproximateNumberOfMessages",
                             "ApproximateNumberOfMessagesNotVisible")
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
