"""Visibility timeouts: expiry redelivers, ChangeMessageVisibility extends, releases and rejects
(API Reference ChangeMessageVisibility; Developer Guide "Visibility timeout")."""

import time

import pytest

from conftest import expect_error, queue_attributes, receive, receive_until


@pytest.fixture
def queue(new_queue):
    return new_queue()


def _one(sqs, url, **kwargs):
    msgs = receive_until(sqs, url, 1, **kwargs)
    assert len(msgs) == 1, msgs
    return msgs[0]


def test_an_unacknowledged_message_is_redelivered_after_the_queue_visibility_timeout(
        sqs, new_queue):
    url = new_queue({"VisibilityTimeout": 1})
    sqs.send_message(QueueUrl=url, MessageBody="retry me")
    first = _one(sqs, url, MessageSystemAttributeNames=["ApproximateReceiveCount"])
    assert receive(sqs, url) == []  # hidden while in flight
    time.sleep(1.3)
    second = _one(sqs, url, MessageSystemAttributeNames=["ApproximateReceiveCount"])
    assert second["MessageId"] == first["MessageId"]
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert second["Attributes"]["ApproximateReceiveCount"] == "2"


def test_receive_visibility_timeout_overrides_the_queue_default(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="short lease")
    first = _one(sqs, queue, VisibilityTimeout=1)
    assert receive(sqs, queue) == []
    time.sleep(1.3)
    assert _one(sqs, queue)["MessageId"] == first["MessageId"]


def test_in_flight_messages_are_counted_as_not_visible(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    _one(sqs, queue)
    assert queue_attributes(sqs, queue, "ApproximateNumberOfMessages",
                            "ApproximateNumberOfMessagesNotVisible") == {
        "ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "1"}


def test_change_message_visibility_extends_the_lease(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="slow work")
    msg = _one(sqs, queue, VisibilityTimeout=1)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"],
                                  VisibilityTimeout=30)
    time.sleep(1.3)
    assert receive(sqs, queue, WaitTimeSeconds=1) == []
    # The receipt handle still works after the extension.
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"])


def test_change_message_visibility_shortens_the_lease(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="give back soon")
    msg = _one(sqs, queue)  # queue default: 30 s
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"],
                                  VisibilityTimeout=1)
    assert receive(sqs, queue) == []
    time.sleep(1.3)
    assert _one(sqs, queue)["MessageId"] == msg["MessageId"]


def test_change_message_visibility_to_zero_makes_the_message_visible_at_once(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="give back")
    msg = _one(sqs, queue)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"],
                                  VisibilityTimeout=0)
    again = receive(sqs, queue, MessageSystemAttributeNames=["ApproximateReceiveCount"])
    assert [m["MessageId"] for m in again] == [msg["MessageId"]]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_change_message_visibility_accepts_the_maximum(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    msg = _one(sqs, queue)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"],
                                  VisibilityTimeout=43200)


@pytest.mark.parametrize("timeout", [43201, -1])
def test_change_message_visibility_out_of_range_is_invalid_parameter_value(sqs, queue, timeout):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    msg = _one(sqs, queue)
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"],
                                      VisibilityTimeout=timeout)


def test_change_message_visibility_with_an_invalid_handle_is_receipt_handle_is_invalid(sqs, queue):
    with expect_error(sqs, "ReceiptHandleIsInvalid"):
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle="garbage", VisibilityTimeout=5)


def test_change_message_visibility_of_a_released_message_succeeds_and_leaves_it_visible(
        sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="x")
    msg = _one(sqs, queue)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"],
                                  VisibilityTimeout=0)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"],
                                  VisibilityTimeout=600)
    assert [m["MessageId"] for m in receive(sqs, queue)] == [msg["MessageId"]]
