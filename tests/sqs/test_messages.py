"""SendMessage, ReceiveMessage and DeleteMessage: bodies, digests, message attributes, message
system attributes, delays and long polling (API Reference; Developer Guide "Message metadata")."""

import threading
import time

import pytest

from conftest import (
    expect_error,
    md5_hex,
    md5_of_message_attributes,
    queue_attributes,
    queue_url_for,
    receive,
    receive_until,
    send_bodies,
    unique_name,
)

TRACE_HEADER = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture
def queue(new_queue):
    return new_queue()


# --- bodies and MD5OfMessageBody -------------------------------------------------------------

BODIES = {
    "ascii": "hello world",
    "unicode": "héllo wörld ✓ 日本語 𝄞",
    "xml-special": "<a href=\"x\">&amp; 'q' &lt;</a> ]]> &",
    "json": '{"order": 1001, "items": [1, 2, 3], "note": null}',
    "whitespace": "line 1\r\nline 2\n\ttabbed\r",
    "one-char": "x",
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_send_returns_md5_of_body_and_receive_returns_it_unchanged(sqs, queue, body):
    sent = sqs.send_message(QueueUrl=queue, MessageBody=body)
    assert sent["MessageId"]
    assert sent["MD5OfMessageBody"] == md5_hex(body)
    assert "MD5OfMessageAttributes" not in sent
    [msg] = receive_until(sqs, queue, 1)
    assert msg["Body"] == body
    assert msg["MessageId"] == sent["MessageId"]
    assert msg["MD5OfBody"] == md5_hex(body)
    assert msg["ReceiptHandle"]


@pytest.mark.parametrize("body", ["nul \x00 char", "backspace \x08", "unit sep \x1f", "\ufffe"],
                         ids=["nul", "backspace", "x1f", "ufffe"])
def test_send_rejects_characters_outside_the_allowed_set(sqs, queue, body):
    with expect_error(sqs, "InvalidMessageContents"):
        sqs.send_message(QueueUrl=queue, MessageBody=body)


def test_send_without_a_body_is_missing_parameter(sqs, queue):
    with expect_error(sqs, "MissingParameter"):
        sqs.send_message(QueueUrl=queue)


# --- message attributes and MD5OfMessageAttributes ------------------------------------------

ATTRIBUTE_SETS = {
    "string": {"color": {"DataType": "String", "StringValue": "blue"}},
    "number": {"price": {"DataType": "Number", "StringValue": "-3.14"},
               "count": {"DataType": "Number", "StringValue": "42"}},
    "binary": {"blob": {"DataType": "Binary", "BinaryValue": bytes(range(256))}},
    "custom-types": {
        "s": {"DataType": "String.custom", "StringValue": "labelled"},
        "n": {"DataType": "Number.float", "StringValue": "2.5"},
        "b": {"DataType": "Binary.gif", "BinaryValue": b"GIF89a\x01\x00"},
    },
    "unicode": {"greeting": {"DataType": "String", "StringValue": "grüße ✓ 𝄞"}},
    "mixed-order": {
        "zeta": {"DataType": "String", "StringValue": "last"},
        "Alpha": {"DataType": "Number", "StringValue": "1"},
        "alpha": {"DataType": "Binary", "BinaryValue": b"\x00"},
        "m.n-o_p": {"DataType": "String", "StringValue": "dots-and-dashes"},
    },
}


@pytest.mark.parametrize("attributes", ATTRIBUTE_SETS.values(), ids=ATTRIBUTE_SETS.keys())
def test_message_attributes_round_trip_with_aws_md5(sqs, queue, attributes):
    expected_md5 = md5_of_message_attributes(attributes)
    sent = sqs.send_message(QueueUrl=queue, MessageBody="with attributes",
                            MessageAttributes=attributes)
    assert sent["MD5OfMessageAttributes"] == expected_md5
    assert sent["MD5OfMessageBody"] == md5_hex("with attributes")
    [msg] = receive_until(sqs, queue, 1, MessageAttributeNames=["All"])
    assert msg["MessageAttributes"] == attributes
    assert msg["MD5OfMessageAttributes"] == expected_md5


FILTER_ATTRIBUTES = {
    "foo.a": {"DataType": "String", "StringValue": "1"},
    "foo.b": {"DataType": "Number", "StringValue": "2"},
    "foobar": {"DataType": "String", "StringValue": "3"},
    "bar": {"DataType": "String", "StringValue": "4"},
    "baz": {"DataType": "Binary", "BinaryValue": b"5"},
}


@pytest.mark.parametrize("names,expected", [
    (["All"], set(FILTER_ATTRIBUTES)),
    ([".*"], set(FILTER_ATTRIBUTES)),
    (["*"], set(FILTER_ATTRIBUTES)),
    # "<prefix>.*": every attribute whose name starts with the prefix, dotted or not.
    (["foo.*"], {"foo.a", "foo.b", "foobar"}),
    (["foo..*"], {"foo.a", "foo.b"}),
    (["fooba.*"], {"foobar"}),
    (["ba.*"], {"bar", "baz"}),
    (["bar"], {"bar"}),
    (["bar", "foo.a"], {"bar", "foo.a"}),
    (["baz", "foo.*"], {"baz", "foo.a", "foo.b", "foobar"}),
    (["foo"], set()),
    (["nope"], set()),
    (None, set()),
], ids=["All", "dot-star", "star", "prefix-wildcard", "dotted-prefix-wildcard",
        "undotted-prefix-wildcard", "two-by-prefix", "exact", "two-exact", "exact-and-wildcard",
        "prefix-without-wildcard", "unknown", "omitted"])
def test_receive_returns_the_requested_message_attributes(sqs, queue, names, expected):
    sqs.send_message(QueueUrl=queue, MessageBody="filter me", MessageAttributes=FILTER_ATTRIBUTES)
    kwargs = {} if names is None else {"MessageAttributeNames": names}
    [msg] = receive_until(sqs, queue, 1, **kwargs)
    got = msg.get("MessageAttributes", {})
    assert set(got) == expected
    assert got == {k: FILTER_ATTRIBUTES[k] for k in expected}
    if expected:
        # The digest covers the attributes returned (what the SDKs verify it against).
        assert msg["MD5OfMessageAttributes"] == md5_of_message_attributes(got)
    else:
        assert "MD5OfMessageAttributes" not in msg


# --- message system attributes ---------------------------------------------------------------


def test_aws_trace_header_round_trips_with_md5_of_message_system_attributes(sqs, queue):
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE_HEADER}}
    sent = sqs.send_message(QueueUrl=queue, MessageBody="traced", MessageSystemAttributes=system)
    assert sent["MD5OfMessageSystemAttributes"] == md5_of_message_attributes(system)
    [msg] = receive_until(sqs, queue, 1, MessageSystemAttributeNames=["AWSTraceHeader"])
    assert msg["Attributes"] == {"AWSTraceHeader": TRACE_HEADER}
    assert "MessageAttributes" not in msg  # system attributes are not message attributes


def test_aws_trace_header_is_not_counted_as_a_message_attribute(sqs, queue):
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": TRACE_HEADER}}
    sent = sqs.send_message(QueueUrl=queue, MessageBody="traced", MessageSystemAttributes=system)
    assert "MD5OfMessageAttributes" not in sent


SYSTEM_ATTRIBUTE_NAMES = ["SenderId", "SentTimestamp", "ApproximateReceiveCount",
                          "ApproximateFirstReceiveTimestamp"]


@pytest.mark.parametrize("parameter", ["MessageSystemAttributeNames", "AttributeNames"])
@pytest.mark.parametrize("name", SYSTEM_ATTRIBUTE_NAMES)
def test_receive_returns_the_requested_system_attribute(sqs, queue, parameter, name):
    sqs.send_message(QueueUrl=queue, MessageBody="sys")
    [msg] = receive_until(sqs, queue, 1, **{parameter: [name]})
    assert set(msg["Attributes"]) == {name}
    assert msg["Attributes"][name]


@pytest.mark.parametrize("parameter", ["MessageSystemAttributeNames", "AttributeNames"])
def test_receive_all_system_attributes(sqs, queue, parameter):
    before_ms = int(time.time() * 1000)
    sqs.send_message(QueueUrl=queue, MessageBody="sys")
    [msg] = receive_until(sqs, queue, 1, **{parameter: ["All"]})
    after_ms = int(time.time() * 1000)
    attrs = msg["Attributes"]
    assert set(SYSTEM_ATTRIBUTE_NAMES) <= set(attrs)
    sent = int(attrs["SentTimestamp"])
    first = int(attrs["ApproximateFirstReceiveTimestamp"])
    assert before_ms - 2000 <= sent <= first <= after_ms + 2000  # epoch milliseconds
    assert attrs["ApproximateReceiveCount"] == "1"
    assert attrs["SenderId"]


def test_receive_without_attribute_names_returns_no_system_attributes(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="plain")
    [msg] = receive_until(sqs, queue, 1)
    assert msg.get("Attributes", {}) == {}


def test_approximate_receive_count_and_first_receive_timestamp_across_receives(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="again")
    [first] = receive_until(sqs, queue, 1, VisibilityTimeout=0,
                            MessageSystemAttributeNames=["All"])
    [second] = receive_until(sqs, queue, 1, MessageSystemAttributeNames=["All"])
    assert second["MessageId"] == first["MessageId"]
    assert first["Attributes"]["ApproximateReceiveCount"] == "1"
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"
    assert (second["Attributes"]["ApproximateFirstReceiveTimestamp"]
            == first["Attributes"]["ApproximateFirstReceiveTimestamp"])
    assert second["ReceiptHandle"] != first["ReceiptHandle"]


# --- delays ---------------------------------------------------------------------------------


def test_delay_seconds_hides_a_message_until_the_delay_ends(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="later", DelaySeconds=2)
    assert receive(sqs, queue) == []
    assert queue_attributes(sqs, queue, "ApproximateNumberOfMessagesDelayed") == {
        "ApproximateNumberOfMessagesDelayed": "1"}
    start = time.monotonic()
    [msg] = receive_until(sqs, queue, 1, timeout=6)
    assert time.monotonic() - start >= 1.0
    assert msg["Body"] == "later"


def test_queue_delay_applies_unless_the_message_sets_its_own(sqs, new_queue):
    url = new_queue({"DelaySeconds": 60})
    sqs.send_message(QueueUrl=url, MessageBody="queue delay")
    sqs.send_message(QueueUrl=url, MessageBody="no delay", DelaySeconds=0)
    msgs = receive_until(sqs, url, 2, timeout=2)
    assert [m["Body"] for m in msgs] == ["no delay"]
    assert queue_attributes(sqs, url, "ApproximateNumberOfMessagesDelayed") == {
        "ApproximateNumberOfMessagesDelayed": "1"}


# --- receive parameters -----------------------------------------------------------------------


@pytest.mark.parametrize("max_number", [1, 2, 5, 10])
def test_receive_returns_up_to_max_number_of_messages(sqs, queue, max_number):
    send_bodies(sqs, queue, [f"m{i}" for i in range(12)])
    msgs = receive(sqs, queue, MaxNumberOfMessages=max_number, WaitTimeSeconds=1)
    # A single broker holds all twelve messages, so it can fill the request exactly.
    assert len(msgs) == max_number
    assert len({m["MessageId"] for m in msgs}) == max_number


def test_receive_defaults_to_one_message(sqs, queue):
    send_bodies(sqs, queue, ["a", "b", "c"])
    assert len(sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"]) == 1


@pytest.mark.parametrize("max_number", [0, 11, -1])
def test_receive_rejects_max_number_of_messages_out_of_range(sqs, queue, max_number):
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=max_number)


@pytest.mark.parametrize("wait", [21, -1])
def test_receive_rejects_wait_time_seconds_out_of_range(sqs, queue, wait):
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=wait)


@pytest.mark.parametrize("visibility", [43201, -1])
def test_receive_rejects_visibility_timeout_out_of_range(sqs, queue, visibility):
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.receive_message(QueueUrl=queue, VisibilityTimeout=visibility)


def test_receive_on_an_empty_queue_returns_no_messages(sqs, queue):
    resp = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=0)
    assert resp.get("Messages", []) == []


def test_long_poll_waits_for_wait_time_seconds_on_an_empty_queue(sqs, queue):
    start = time.monotonic()
    assert receive(sqs, queue, WaitTimeSeconds=2) == []
    assert time.monotonic() - start >= 1.8


def test_long_poll_returns_as_soon_as_a_message_arrives(sqs, queue, client_factory):
    producer = client_factory("json")
    timer = threading.Timer(0.4, lambda: producer.send_message(QueueUrl=queue, MessageBody="hi"))
    start = time.monotonic()
    timer.start()
    try:
        msgs = receive(sqs, queue, WaitTimeSeconds=2)
    finally:
        timer.join()
    elapsed = time.monotonic() - start
    assert [m["Body"] for m in msgs] == ["hi"]
    assert 0.3 <= elapsed < 1.8


def test_queue_receive_wait_time_is_the_default_long_poll(sqs, new_queue):
    url = new_queue({"ReceiveMessageWaitTimeSeconds": 1})
    start = time.monotonic()
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    assert time.monotonic() - start >= 0.9
    start = time.monotonic()
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages", []) == []
    assert time.monotonic() - start < 0.8


def test_long_poll_with_maximum_wait_returns_at_once_when_messages_are_there(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="ready")
    start = time.monotonic()
    msgs = receive(sqs, queue, WaitTimeSeconds=20)
    assert [m["Body"] for m in msgs] == ["ready"]
    assert time.monotonic() - start < 5


# --- delete -----------------------------------------------------------------------------------


def test_delete_message_removes_it_for_good(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="bye")
    [msg] = receive_until(sqs, queue, 1, VisibilityTimeout=1)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"])
    time.sleep(1.3)
    assert receive(sqs, queue, WaitTimeSeconds=1) == []
    attrs = queue_attributes(sqs, queue, "ApproximateNumberOfMessages",
                             "ApproximateNumberOfMessagesNotVisible")
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


@pytest.mark.parametrize("handle", ["garbage", "AQEBxyz=="], ids=["word", "base64-like"])
def test_delete_with_an_invalid_receipt_handle_is_receipt_handle_is_invalid(sqs, queue, handle):
    with expect_error(sqs, "ReceiptHandleIsInvalid"):
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=handle)


def test_delete_on_a_missing_queue_is_queue_does_not_exist(sqs, baton_endpoint):
    with expect_error(sqs, "QueueDoesNotExist"):
        sqs.delete_message(QueueUrl=queue_url_for(baton_endpoint, unique_name("missing")),
                           ReceiptHandle="garbage")
