"""Quotas at their edges (API Reference; Developer Guide "Amazon SQS quotas"): 1 MiB messages
counting attribute names, types and values, MaximumMessageSize, 10 attributes, delays, visibility,
waits and retention."""

import pytest

from conftest import expect_error, queue_attributes, receive_until, unique_name

MIB = 1_048_576


@pytest.fixture
def queue(new_queue):
    return new_queue()


def _attribute_bytes(attributes: dict) -> int:
    total = 0
    for name, attr in attributes.items():
        value = attr.get("StringValue", attr.get("BinaryValue"))
        value = value.encode() if isinstance(value, str) else value
        total += len(name.encode()) + len(attr["DataType"].encode()) + len(value)
    return total


def test_a_message_of_exactly_1_mib_is_accepted_and_delivered_whole(sqs, queue):
    body = "x" * MIB
    sqs.send_message(QueueUrl=queue, MessageBody=body)
    [msg] = receive_until(sqs, queue, 1)
    assert len(msg["Body"]) == MIB
    assert msg["Body"] == body


def test_a_message_one_byte_over_1_mib_is_rejected(sqs, queue):
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="x" * (MIB + 1))


def test_message_size_counts_utf8_bytes(sqs, new_queue):
    url = new_queue({"MaximumMessageSize": 1024})
    sqs.send_message(QueueUrl=url, MessageBody="é" * 512)  # 2 bytes each: exactly 1024
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.send_message(QueueUrl=url, MessageBody="é" * 512 + "a")


ATTRIBUTES = {
    "trace": {"DataType": "String", "StringValue": "abcdef"},
    "n": {"DataType": "Number.int", "StringValue": "12345"},
    "utf8": {"DataType": "String", "StringValue": "välue ✓"},  # sizes are UTF-8 bytes
}


def test_attribute_names_types_and_values_count_towards_the_limit(sqs, queue):
    body = "y" * (MIB - _attribute_bytes(ATTRIBUTES))
    sqs.send_message(QueueUrl=queue, MessageBody=body, MessageAttributes=ATTRIBUTES)
    [msg] = receive_until(sqs, queue, 1, MessageAttributeNames=["All"])
    assert len(msg["Body"]) == len(body)
    assert msg["MessageAttributes"] == ATTRIBUTES
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody=body + "y", MessageAttributes=ATTRIBUTES)


def test_a_batch_of_exactly_1_mib_in_total_is_accepted(sqs, queue):
    half = "z" * (MIB // 2)
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=[
        {"Id": "a", "MessageBody": half}, {"Id": "b", "MessageBody": half}])
    assert len(resp["Successful"]) == 2
    with expect_error(sqs, "BatchRequestTooLong"):
        sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": "a", "MessageBody": half}, {"Id": "b", "MessageBody": half + "z"}])


def test_maximum_message_size_of_a_queue_is_enforced(sqs, new_queue):
    url = new_queue({"MaximumMessageSize": 1024})
    sqs.send_message(QueueUrl=url, MessageBody="m" * 1024)
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.send_message(QueueUrl=url, MessageBody="m" * 1025)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"MaximumMessageSize": str(MIB)})
    sqs.send_message(QueueUrl=url, MessageBody="m" * MIB)


def test_ten_message_attributes_are_accepted_eleven_are_not(sqs, queue):
    attrs = {f"a{i}": {"DataType": "String", "StringValue": str(i)} for i in range(11)}
    ten = dict(list(attrs.items())[:10])
    sqs.send_message(QueueUrl=queue, MessageBody="ten", MessageAttributes=ten)
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="eleven", MessageAttributes=attrs)


def test_delay_seconds_up_to_900(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="max delay", DelaySeconds=900)
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="too long", DelaySeconds=901)
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.send_message(QueueUrl=queue, MessageBody="negative", DelaySeconds=-1)


def test_batch_entry_delay_over_900_fails_the_entry_or_the_request(sqs, queue):
    # The API Reference does not say whether this fails the entry or the whole request; either
    # way the message must not be enqueued with an out-of-range delay.
    try:
        resp = sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": "bad", "MessageBody": "x", "DelaySeconds": 901}])
    except sqs.exceptions.ClientError as err:
        assert err.response["Error"]["Code"] == "InvalidParameterValue"
    else:
        assert [f["Id"] for f in resp["Failed"]] == ["bad"]
        assert resp["Failed"][0]["SenderFault"] is True


def test_receive_visibility_timeout_up_to_43200(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="long lease")
    [msg] = receive_until(sqs, queue, 1, VisibilityTimeout=43200)
    assert msg["Body"] == "long lease"


def test_receive_wait_time_seconds_up_to_20(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="waiting")
    resp = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=20)
    assert [m["Body"] for m in resp["Messages"]] == ["waiting"]
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=21)


@pytest.mark.parametrize("attribute,low,high", [
    ("MessageRetentionPeriod", 60, 1209600),
    ("DelaySeconds", 0, 900),
    ("VisibilityTimeout", 0, 43200),
    ("ReceiveMessageWaitTimeSeconds", 0, 20),
    ("MaximumMessageSize", 1024, MIB),
])
def test_queue_attribute_ranges_at_both_edges(sqs, attribute, low, high):
    for value in (low, high):
        url = sqs.create_queue(QueueName=unique_name(), Attributes={attribute: str(value)})[
            "QueueUrl"]
        assert queue_attributes(sqs, url, attribute) == {attribute: str(value)}
    for value in (low - 1, high + 1):
        with expect_error(sqs, "InvalidAttributeValue"):
            sqs.create_queue(QueueName=unique_name(), Attributes={attribute: str(value)})


def test_queue_name_up_to_80_characters_including_fifo_suffix(sqs):
    base = unique_name("fifo")
    name = base + "_" * (80 - len(base) - len(".fifo")) + ".fifo"
    assert len(name) == 80
    sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.create_queue(QueueName="_" + name, Attributes={"FifoQueue": "true"})
