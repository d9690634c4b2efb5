"""FIFO queues: MessageGroupId, deduplication, SequenceNumber, ordering, group locking and
ReceiveRequestAttemptId (API Reference SendMessage/ReceiveMessage; Developer Guide "FIFO queues")."""

import time

import pytest

from conftest import expect_error, queue_attributes, receive, receive_until, unique_name


@pytest.fixture
def fifo(new_queue):
    return new_queue(fifo=True)


@pytest.fixture
def fifo_cbd(new_queue):
    return new_queue({"ContentBasedDeduplication": "true"}, fifo=True)


def _send(sqs, url, body, group="g", dedup=None, **kwargs):
    params = {"QueueUrl": url, "MessageBody": body, "MessageGroupId": group, **kwargs}
    if dedup is not None:
        params["MessageDeduplicationId"] = dedup
    return sqs.send_message(**params)


def _drain(sqs, url, expected, timeout=10.0, **kwargs):
    """Receives and deletes until ``expected`` messages came; returns them in arrival order."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < expected and time.monotonic() < deadline:
        batch = receive(sqs, url, MaxNumberOfMessages=10, WaitTimeSeconds=1, **kwargs)
        for msg in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
        got += batch
    return got


# --- creation -----------------------------------------------------------------------------------


def test_create_fifo_queue_attributes(sqs):
    name = unique_name(fifo=True)
    url = sqs.create_queue(QueueName=name, Attributes={
        "FifoQueue": "true", "ContentBasedDeduplication": "true"})["QueueUrl"]
    assert url.endswith("/" + name)
    attrs = queue_attributes(sqs, url, "All")
    assert attrs["FifoQueue"] == "true"
    assert attrs["ContentBasedDeduplication"] == "true"


def test_fifo_content_based_deduplication_defaults_to_false(sqs, fifo):
    assert queue_attributes(sqs, fifo, "FifoQueue", "ContentBasedDeduplication") == {
        "FifoQueue": "true", "ContentBasedDeduplication": "false"}


@pytest.mark.parametrize("attribute,value", [
    ("DeduplicationScope", "messageGroup"),
    ("DeduplicationScope", "queue"),
    ("FifoThroughputLimit", "perMessageGroupId"),
    ("FifoThroughputLimit", "perQueue"),
])
def test_fifo_high_throughput_attributes_are_accepted(sqs, attribute, value):
    url = sqs.create_queue(QueueName=unique_name(fifo=True),
                           Attributes={"FifoQueue": "true", attribute: value})["QueueUrl"]
    assert queue_attributes(sqs, url, attribute) == {attribute: value}


def test_fifo_queue_name_must_end_in_fifo(sqs):
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.create_queue(QueueName=unique_name(), Attributes={"FifoQueue": "true"})


def test_a_fifo_name_without_the_fifo_attribute_is_not_a_valid_standard_queue_name(sqs):
    # Without FifoQueue SQS creates a standard queue, whose name may not contain a period.
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.create_queue(QueueName=unique_name(fifo=True))


# --- sending ------------------------------------------------------------------------------------


def test_message_group_id_is_required(sqs, fifo):
    with expect_error(sqs, "MissingParameter"):
        sqs.send_message(QueueUrl=fifo, MessageBody="x", MessageDeduplicationId="d")


def test_deduplication_id_or_content_based_deduplication_is_required(sqs, fifo):
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.send_message(QueueUrl=fifo, MessageBody="x", MessageGroupId="g")


def test_per_message_delay_is_rejected_on_fifo_queues(sqs, fifo):
    with expect_error(sqs, "InvalidParameterValue") as err:
        _send(sqs, fifo, "x", dedup="d", DelaySeconds=5)
    assert err.message == (
        "Value 5 for parameter DelaySeconds is invalid. Reason: The request include parameter "
        "that is not valid for this queue type.")
    assert queue_attributes(sqs, fifo, "ApproximateNumberOfMessages") == {
        "ApproximateNumberOfMessages": "0"}


def test_a_zero_per_message_delay_is_accepted_on_fifo_queues(sqs, fifo):
    _send(sqs, fifo, "no delay", dedup="d", DelaySeconds=0)
    assert [m["Body"] for m in receive_until(sqs, fifo, 1)] == ["no delay"]


def test_a_per_message_delay_fails_its_batch_entry_on_fifo_queues(sqs, fifo):
    resp = sqs.send_message_batch(QueueUrl=fifo, Entries=[
        {"Id": "late", "MessageBody": "x", "MessageGroupId": "g", "MessageDeduplicationId": "1",
         "DelaySeconds": 3},
        {"Id": "now", "MessageBody": "y", "MessageGroupId": "g", "MessageDeduplicationId": "2",
         "DelaySeconds": 0},
    ])
    assert [r["Id"] for r in resp["Successful"]] == ["now"]
    [failed] = resp["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "late", "InvalidParameterValue", True)
    assert failed["Message"].startswith("Value 3 for parameter DelaySeconds is invalid.")


def test_sequence_numbers_are_returned_and_increase(sqs, fifo):
    seqs = [_send(sqs, fifo, f"m{i}", dedup=f"d{i}")["SequenceNumber"] for i in range(3)]
    resp = sqs.send_message_batch(QueueUrl=fifo, Entries=[
        {"Id": f"b{i}", "MessageBody": f"b{i}", "MessageGroupId": "g",
         "MessageDeduplicationId": f"bd{i}"} for i in range(3)])
    by_id = {r["Id"]: r for r in resp["Successful"]}
    seqs += [by_id[f"b{i}"]["SequenceNumber"] for i in range(3)]
    numbers = [int(s) for s in seqs]
    assert numbers == sorted(numbers) and len(set(numbers)) == 6


def test_same_deduplication_id_within_five_minutes_is_accepted_but_delivered_once(sqs, fifo):
    first = _send(sqs, fifo, "original", dedup="same-id")
    second = _send(sqs, fifo, "duplicate", dedup="same-id")
    assert second["MessageId"] == first["MessageId"]
    msgs = _drain(sqs, fifo, 2, timeout=3)
    assert [m["Body"] for m in msgs] == ["original"]


def test_deduplication_outlives_deletion(sqs, fifo):
    _send(sqs, fifo, "once", dedup="kept")
    assert [m["Body"] for m in _drain(sqs, fifo, 1)] == ["once"]
    _send(sqs, fifo, "once again", dedup="kept")
    assert receive(sqs, fifo, WaitTimeSeconds=1) == []


def test_content_based_deduplication_uses_the_body(sqs, fifo_cbd):
    first = _send(sqs, fifo_cbd, "same body")
    second = _send(sqs, fifo_cbd, "same body")
    third = _send(sqs, fifo_cbd, "other body")
    assert second["MessageId"] == first["MessageId"]
    assert third["MessageId"] != first["MessageId"]
    msgs = _drain(sqs, fifo_cbd, 3, timeout=3)
    assert [m["Body"] for m in msgs] == ["same body", "other body"]


def test_explicit_deduplication_id_overrides_content_based(sqs, fifo_cbd):
    _send(sqs, fifo_cbd, "same body", dedup="one")
    _send(sqs, fifo_cbd, "same body", dedup="two")
    assert [m["Body"] for m in _drain(sqs, fifo_cbd, 2)] == ["same body", "same body"]


def test_deduplication_in_a_batch(sqs, fifo):
    resp = sqs.send_message_batch(QueueUrl=fifo, Entries=[
        {"Id": "a", "MessageBody": "a", "MessageGroupId": "g", "MessageDeduplicationId": "x"},
        {"Id": "b", "MessageBody": "b", "MessageGroupId": "g", "MessageDeduplicationId": "x"},
    ])
    ids = {r["Id"]: r["MessageId"] for r in resp["Successful"]}
    assert ids["a"] == ids["b"]
    assert [m["Body"] for m in _drain(sqs, fifo, 2, timeout=3)] == ["a"]


# --- receiving ----------------------------------------------------------------------------------


def test_messages_of_a_group_arrive_in_send_order(sqs, fifo):
    bodies = [f"step {i:02d}" for i in range(15)]
    for i, body in enumerate(bodies):
        _send(sqs, fifo, body, dedup=f"d{i}")
    assert [m["Body"] for m in _drain(sqs, fifo, 15)] == bodies


def test_batch_send_order_is_kept(sqs, fifo):
    sqs.send_message_batch(QueueUrl=fifo, Entries=[
        {"Id": f"e{i}", "MessageBody": f"b{i}", "MessageGroupId": "g",
         "MessageDeduplicationId": f"d{i}"} for i in range(10)])
    assert [m["Body"] for m in _drain(sqs, fifo, 10)] == [f"b{i}" for i in range(10)]


def test_order_is_kept_per_group_across_interleaved_groups(sqs, fifo):
    for i in range(6):
        group = "even" if i % 2 == 0 else "odd"
        _send(sqs, fifo, f"{group}-{i}", group=group, dedup=f"d{i}")
    msgs = _drain(sqs, fifo, 6, MessageSystemAttributeNames=["MessageGroupId"])
    by_group = {}
    for m in msgs:
        by_group.setdefault(m["Attributes"]["MessageGroupId"], []).append(m["Body"])
    assert by_group == {"even": ["even-0", "even-2", "even-4"], "odd": ["odd-1", "odd-3", "odd-5"]}


def test_a_group_is_blocked_while_one_of_its_messages_is_in_flight(sqs, fifo):
    _send(sqs, fifo, "a1", group="a", dedup="1")
    _send(sqs, fifo, "a2", group="a", dedup="2")
    _send(sqs, fifo, "b1", group="b", dedup="3")
    [first] = receive(sqs, fifo, MaxNumberOfMessages=1)
    assert first["Body"] == "a1"
    # Group a is locked by a1 in flight: only group b is available.
    others = receive(sqs, fifo, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    assert [m["Body"] for m in others] == ["b1"]
    assert receive(sqs, fifo, MaxNumberOfMessages=10) == []
    sqs.delete_message(QueueUrl=fifo, ReceiptHandle=first["ReceiptHandle"])
    assert [m["Body"] for m in receive(sqs, fifo, MaxNumberOfMessages=10, WaitTimeSeconds=1)] == [
        "a2"]


def test_an_expired_message_is_redelivered_before_the_rest_of_its_group(sqs, new_queue):
    url = new_queue({"VisibilityTimeout": 1}, fifo=True)
    _send(sqs, url, "first", dedup="1")
    _send(sqs, url, "second", dedup="2")
    [msg] = receive(sqs, url, MaxNumberOfMessages=1)
    assert msg["Body"] == "first"
    time.sleep(1.3)
    [again] = receive(sqs, url, MaxNumberOfMessages=1, WaitTimeSeconds=1)
    assert again["Body"] == "first"
    assert again["MessageId"] == msg["MessageId"]


def test_fifo_system_attributes(sqs, fifo):
    sent = _send(sqs, fifo, "attrs", group="grp-7", dedup="dedup-7")
    [msg] = receive_until(sqs, fifo, 1, MessageSystemAttributeNames=["All"])
    attrs = msg["Attributes"]
    assert attrs["MessageGroupId"] == "grp-7"
    assert attrs["MessageDeduplicationId"] == "dedup-7"
    assert attrs["SequenceNumber"] == sent["SequenceNumber"]


def test_receive_request_attempt_id_returns_the_same_messages_on_retry(sqs, fifo):
    for i in range(3):
        _send(sqs, fifo, f"m{i}", dedup=f"d{i}")
    first = receive(sqs, fifo, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                    ReceiveRequestAttemptId="attempt-1")
    assert [m["Body"] for m in first] == ["m0", "m1", "m2"]
    retry = receive(sqs, fifo, MaxNumberOfMessages=10, ReceiveRequestAttemptId="attempt-1")
    assert [m["MessageId"] for m in retry] == [m["MessageId"] for m in first]
    assert [m["ReceiptHandle"] for m in retry] == [m["ReceiptHandle"] for m in first]
    # A different attempt sees the group locked.
    assert receive(sqs, fifo, MaxNumberOfMessages=10, ReceiveRequestAttemptId="attempt-2") == []
