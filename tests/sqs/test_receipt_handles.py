"""What a receipt handle does once it is no longer the latest (API Reference DeleteMessage,
ChangeMessageVisibility and their batches, as SQS answers them):

* standard queues: any receipt handle ever issued for a message that still exists deletes it,
  an expired one and one superseded by a later receive included (SQS only says it may not);
* FIFO queues: a handle whose lease ended and was not extended no longer deletes
  (InvalidParameterValue, "The receipt handle has expired.");
* ChangeMessageVisibility by a superseded handle sets the visibility of the message received
  again; by an expired handle of a message not received again it succeeds and leaves the
  message visible; for a deleted message it is InvalidParameterValue;
* only handles never issued are ReceiptHandleIsInvalid;
* handles are URL- and shell-safe and never start with "-" (the aws CLI would take such a
  value for an option)."""

import re
import time

import pytest

from conftest import expect_error, queue_attributes, receive, receive_until, send_bodies


@pytest.fixture
def queue(new_queue):
    return new_queue()


@pytest.fixture
def fifo(new_queue):
    return new_queue({"ContentBasedDeduplication": "true"}, fifo=True)


def _one(sqs, url, **kwargs):
    msgs = receive_until(sqs, url, 1, **kwargs)
    assert len(msgs) == 1, msgs
    return msgs[0]


def _counts(sqs, url):
    attrs = queue_attributes(sqs, url, "ApproximateNumberOfMessages",
                             "ApproximateNumberOfMessagesNotVisible")
    return int(attrs["ApproximateNumberOfMessages"]), int(
        attrs["ApproximateNumberOfMessagesNotVisible"])


def _expired_then_received_again(sqs, url):
    """A message received with a 1 s lease, then again after it expired: (first, second)."""
    sqs.send_message(QueueUrl=url, MessageBody="twice", **_group_for(url))
    first = _one(sqs, url, VisibilityTimeout=1)
    time.sleep(1.3)
    second = _one(sqs, url, VisibilityTimeout=30)
    assert second["MessageId"] == first["MessageId"]
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    return first, second


def _group_for(url):
    return {"MessageGroupId": "g"} if url.endswith(".fifo") else {}


# --- DeleteMessage on a standard queue --------------------------------------------------------


def test_delete_by_an_expired_handle_deletes_the_message(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="late worker")
    msg = _one(sqs, queue, VisibilityTimeout=1)
    time.sleep(1.3)  # the lease ended: the message is visible again
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"])
    assert _counts(sqs, queue) == (0, 0)
    assert receive(sqs, queue, WaitTimeSeconds=1) == []


def test_delete_by_a_superseded_handle_deletes_the_message_received_again(sqs, queue):
    first, second = _expired_then_received_again(sqs, queue)
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"])
    assert _counts(sqs, queue) == (0, 0)
    # The message is gone: its latest handle deletes nothing and still succeeds.
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=second["ReceiptHandle"])
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"])


def test_delete_message_batch_by_expired_and_superseded_handles(sqs, queue):
    send_bodies(sqs, queue, ["a", "b", "c"])
    first = {m["Body"]: m for m in receive_until(sqs, queue, 3, VisibilityTimeout=1)}
    assert set(first) == {"a", "b", "c"}
    time.sleep(1.3)
    again = {m["Body"]: m for m in receive_until(sqs, queue, 2, VisibilityTimeout=30)}
    assert len(again) == 2
    resp = sqs.delete_message_batch(QueueUrl=queue, Entries=[
        {"Id": body, "ReceiptHandle": msg["ReceiptHandle"]} for body, msg in first.items()])
    assert sorted(r["Id"] for r in resp["Successful"]) == ["a", "b", "c"]
    assert resp.get("Failed", []) == []
    assert _counts(sqs, queue) == (0, 0)


def test_delete_by_handles_never_issued_is_receipt_handle_is_invalid(sqs, queue, new_queue):
    other = new_queue()
    sqs.send_message(QueueUrl=other, MessageBody="elsewhere")
    foreign = _one(sqs, other)["ReceiptHandle"]
    sqs.send_message(QueueUrl=queue, MessageBody="mine")
    mine = _one(sqs, queue)["ReceiptHandle"]
    # One character changed: still a handle in form, never issued.
    damaged = mine[:10] + ("A" if mine[10] != "A" else "B") + mine[11:]
    for handle in [foreign, damaged]:
        with expect_error(sqs, "ReceiptHandleIsInvalid") as err:
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=handle)
        assert err.message == f'The input receipt handle "{handle}" is not a valid receipt handle.'
    assert _counts(sqs, queue) == (0, 1)
    assert _counts(sqs, other) == (0, 1)
    resp = sqs.delete_message_batch(QueueUrl=queue, Entries=[
        {"Id": "foreign", "ReceiptHandle": foreign}, {"Id": "mine", "ReceiptHandle": mine}])
    assert [r["Id"] for r in resp["Successful"]] == ["mine"]
    assert [(f["Id"], f["Code"]) for f in resp["Failed"]] == [
        ("foreign", "ReceiptHandleIsInvalid")]


def test_a_handle_of_a_deleted_and_recreated_queue_is_invalid(sqs, new_queue):
    url = new_queue()
    sqs.send_message(QueueUrl=url, MessageBody="x")
    handle = _one(sqs, url)["ReceiptHandle"]
    sqs.delete_queue(QueueUrl=url)
    name = url.rsplit("/", 1)[1]
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="y")
    _one(sqs, url)
    with expect_error(sqs, "ReceiptHandleIsInvalid"):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
    assert _counts(sqs, url) == (0, 1)


# --- DeleteMessage on a FIFO queue ------------------------------------------------------------


def test_fifo_delete_by_an_expired_handle_is_invalid_parameter_value(sqs, fifo):
    sqs.send_message(QueueUrl=fifo, MessageBody="expires", MessageGroupId="g")
    msg = _one(sqs, fifo, VisibilityTimeout=1)
    time.sleep(1.3)
    handle = msg["ReceiptHandle"]
    with expect_error(sqs, "InvalidParameterValue") as err:
        sqs.delete_message(QueueUrl=fifo, ReceiptHandle=handle)
    assert err.message == (
        f"Value {handle} for parameter ReceiptHandle is invalid. "
        "Reason: The receipt handle has expired.")
    # Nothing was deleted: the message comes again.
    assert _one(sqs, fifo)["MessageId"] == msg["MessageId"]


def test_fifo_delete_message_batch_reports_an_expired_handle_per_entry(sqs, fifo):
    sqs.send_message(QueueUrl=fifo, MessageBody="expires", MessageGroupId="g")
    msg = _one(sqs, fifo, VisibilityTimeout=1)
    time.sleep(1.3)
    resp = sqs.delete_message_batch(QueueUrl=fifo, Entries=[
        {"Id": "old", "ReceiptHandle": msg["ReceiptHandle"]}])
    assert resp.get("Successful", []) == []
    [failed] = resp["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "old", "InvalidParameterValue", True)
    assert failed["Message"].endswith("Reason: The receipt handle has expired.")
    assert _counts(sqs, fifo) == (1, 0)


def test_fifo_delete_by_an_extended_handle_after_its_first_deadline(sqs, fifo):
    sqs.send_message(QueueUrl=fifo, MessageBody="slow", MessageGroupId="g")
    msg = _one(sqs, fifo, VisibilityTimeout=1)
    sqs.change_message_visibility(QueueUrl=fifo, ReceiptHandle=msg["ReceiptHandle"],
                                  VisibilityTimeout=30)
    time.sleep(1.3)
    sqs.delete_message(QueueUrl=fifo, ReceiptHandle=msg["ReceiptHandle"])
    assert _counts(sqs, fifo) == (0, 0)


# --- ChangeMessageVisibility ------------------------------------------------------------------


def test_visibility_by_a_superseded_handle_sets_the_visibility_of_the_message(sqs, queue):
    first, _ = _expired_then_received_again(sqs, queue)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"],
                                  VisibilityTimeout=0)
    assert _one(sqs, queue)["MessageId"] == first["MessageId"]


def test_visibility_by_a_superseded_handle_extends_the_current_lease(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="twice")
    first = _one(sqs, queue, VisibilityTimeout=1)
    time.sleep(1.3)
    second = _one(sqs, queue, VisibilityTimeout=1)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=first["ReceiptHandle"],
                                  VisibilityTimeout=30)
    time.sleep(1.3)
    assert receive(sqs, queue, WaitTimeSeconds=1) == []
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=second["ReceiptHandle"])


def test_visibility_by_an_expired_handle_succeeds_and_leaves_the_message_visible(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="expired")
    msg = _one(sqs, queue, VisibilityTimeout=1)
    time.sleep(1.3)
    sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=msg["ReceiptHandle"],
                                  VisibilityTimeout=600)
    assert _counts(sqs, queue) == (1, 0)
    resp = sqs.change_message_visibility_batch(QueueUrl=queue, Entries=[
        {"Id": "e", "ReceiptHandle": msg["ReceiptHandle"], "VisibilityTimeout": 600}])
    assert [r["Id"] for r in resp["Successful"]] == ["e"]
    assert _one(sqs, queue)["MessageId"] == msg["MessageId"]


def test_visibility_of_a_deleted_message_is_invalid_parameter_value(sqs, queue):
    sqs.send_message(QueueUrl=queue, MessageBody="gone")
    handle = _one(sqs, queue)["ReceiptHandle"]
    sqs.delete_message(QueueUrl=queue, ReceiptHandle=handle)
    with expect_error(sqs, "InvalidParameterValue") as err:
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=handle, VisibilityTimeout=5)
    assert err.message == (
        f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does not exist "
        "or is not available for visibility timeout change.")
    resp = sqs.change_message_visibility_batch(QueueUrl=queue, Entries=[
        {"Id": "gone", "ReceiptHandle": handle, "VisibilityTimeout": 5}])
    [failed] = resp["Failed"]
    assert (failed["Id"], failed["Code"], failed["SenderFault"]) == (
        "gone", "InvalidParameterValue", True)
    assert failed["Message"] == err.message


def test_visibility_by_a_handle_never_issued_is_receipt_handle_is_invalid(sqs, queue, new_queue):
    other = new_queue()
    sqs.send_message(QueueUrl=other, MessageBody="elsewhere")
    foreign = _one(sqs, other)["ReceiptHandle"]
    with expect_error(sqs, "ReceiptHandleIsInvalid") as err:
        sqs.change_message_visibility(QueueUrl=queue, ReceiptHandle=foreign, VisibilityTimeout=0)
    assert err.message == f'The input receipt handle "{foreign}" is not a valid receipt handle.'
    assert _counts(sqs, other) == (0, 1)


# --- the handles themselves -------------------------------------------------------------------


def test_receipt_handles_are_url_and_shell_safe_and_never_start_with_a_dash(sqs, queue):
    send_bodies(sqs, queue, [f"m{i}" for i in range(100)])
    handles = []
    for _ in range(5):  # 500 handles: with a random first character, ~8 would start with "-"
        msgs = receive_until(sqs, queue, 100, VisibilityTimeout=0)
        handles += [m["ReceiptHandle"] for m in msgs]
        for m in msgs:
            assert not m["MessageId"].startswith("-")
    assert len(handles) == 500
    assert len(set(handles)) == 500
    for handle in handles:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", handle), handle
