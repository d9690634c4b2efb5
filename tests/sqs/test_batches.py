"""SendMessageBatch, DeleteMessageBatch and ChangeMessageVisibilityBatch (API Reference): per-entry
results, partial failures and the batch-level errors."""

import pytest

from conftest import (
    expect_error,
    md5_hex,
    md5_of_message_attributes,
    queue_attributes,
    receive,
    receive_until,
    send_bodies,
)


@pytest.fixture
def queue(new_queue):
    return new_queue()


def _received(sqs, url, count, **kwargs):
    msgs = receive_until(sqs, url, count, **kwargs)
    assert len(msgs) == count
    return msgs


# --- SendMessageBatch -------------------------------------------------------------------------


def test_send_message_batch_of_ten(sqs, queue):
    attrs = {"k": {"DataType": "String", "StringValue": "v"}}
    system = {"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1-5759e988-bd862e3fe1be46a994272793"}}
    entries = [{"Id": f"id-{i}", "MessageBody": f"body {i}"} for i in range(10)]
    entries[3]["MessageAttributes"] = attrs
    entries[4]["MessageSystemAttributes"] = system
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=entries)
    assert resp.get("Failed", []) == []
    results = {r["Id"]: r for r in resp["Successful"]}
    assert set(results) == {e["Id"] for e in entries}
    for entry in entries:
        result = results[entry["Id"]]
        assert result["MessageId"]
        assert result["MD5OfMessageBody"] == md5_hex(entry["MessageBody"])
    assert results["id-3"]["MD5OfMessageAttributes"] == md5_of_message_attributes(attrs)
    assert "MD5OfMessageAttributes" not in results["id-0"]
    assert results["id-4"]["MD5OfMessageSystemAttributes"] == md5_of_message_attributes(system)
    bodies = {m["Body"] for m in _received(sqs, queue, 10)}
    assert bodies == {e["MessageBody"] for e in entries}


def test_send_message_batch_entry_delay(sqs, queue):
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=[
        {"Id": "now", "MessageBody": "now"},
        {"Id": "later", "MessageBody": "later", "DelaySeconds": 60},
    ])
    assert len(resp["Successful"]) == 2
    assert [m["Body"] for m in receive_until(sqs, queue, 2, timeout=2)] == ["now"]
    assert queue_attributes(sqs, queue, "ApproximateNumberOfMessagesDelayed") == {
        "ApproximateNumberOfMessagesDelayed": "1"}


def test_send_message_batch_reports_failed_entries_and_sends_the_rest(sqs, queue):
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=[
        {"Id": "good-1", "MessageBody": "fine"},
        {"Id": "bad", "MessageBody": "nul \x00 is not allowed"},
        {"Id": "good-2", "MessageBody": "also fine"},
    ])
    assert {r["Id"] for r in resp["Successful"]} == {"good-1", "good-2"}
    [failed] = resp["Failed"]
    assert failed["Id"] == "bad"
    assert failed["SenderFault"] is True
    assert failed["Code"]  # the API Reference does not fix the per-entry code
    assert {m["Body"] for m in _received(sqs, queue, 2)} == {"fine", "also fine"}


def test_send_message_batch_with_duplicate_ids_is_batch_entry_ids_not_distinct(sqs, queue):
    with expect_error(sqs, "BatchEntryIdsNotDistinct"):
        sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": "same", "MessageBody": "a"}, {"Id": "same", "MessageBody": "b"}])
    assert receive(sqs, queue) == []


def test_send_message_batch_of_eleven_is_too_many_entries(sqs, queue):
    with expect_error(sqs, "TooManyEntriesInBatchRequest"):
        sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": f"e{i}", "MessageBody": "x"} for i in range(11)])
    assert receive(sqs, queue) == []


@pytest.mark.parametrize("operation,entry_type", [
    ("send_message_batch", "SendMessageBatchRequestEntry"),
    ("delete_message_batch", "DeleteMessageBatchRequestEntry"),
    ("change_message_visibility_batch", "ChangeMessageVisibilityBatchRequestEntry"),
])
def test_a_batch_without_entries_is_empty_batch_request_naming_its_entry_type(
        sqs, queue, operation, entry_type):
    with expect_error(sqs, "EmptyBatchRequest") as err:
        getattr(sqs, operation)(QueueUrl=queue, Entries=[])
    assert err.message == f"There should be at least one {entry_type} in the request."


@pytest.mark.parametrize("bad_id", ["has space", "dot.ted", "x" * 81, "ünïcode"],
                         ids=["space", "dot", "81-chars", "non-ascii"])
def test_send_message_batch_with_an_invalid_id_is_invalid_batch_entry_id(sqs, queue, bad_id):
    with expect_error(sqs, "InvalidBatchEntryId"):
        sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": bad_id, "MessageBody": "x"}])


def test_send_message_batch_accepts_80_character_ids(sqs, queue):
    entry_id = "A-z_9" * 16
    resp = sqs.send_message_batch(QueueUrl=queue, Entries=[{"Id": entry_id, "MessageBody": "x"}])
    assert [r["Id"] for r in resp["Successful"]] == [entry_id]


def test_send_message_batch_over_1_mib_in_total_is_batch_request_too_long(sqs, queue):
    body = "x" * 600_000  # each entry is within the limit, the sum is not
    with expect_error(sqs, "BatchRequestTooLong") as err:
        sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": "a", "MessageBody": body}, {"Id": "b", "MessageBody": body}])
    assert err.message == (
        "Batch requests cannot be longer than 1048576 bytes. You have sent 1200000 bytes.")
    assert receive(sqs, queue) == []


def test_one_entry_over_1_mib_is_batch_request_too_long(sqs, queue):
    attributes = {"k": {"DataType": "String", "StringValue": "vv"}}  # 1 + 6 + 2 bytes
    with expect_error(sqs, "BatchRequestTooLong") as err:
        sqs.send_message_batch(QueueUrl=queue, Entries=[
            {"Id": "big", "MessageBody": "x" * 1_048_570, "MessageAttributes": attributes}])
    assert err.message == (
        "Batch requests cannot be longer than 1048576 bytes. You have sent 1048579 bytes.")


def test_the_batch_size_is_checked_before_the_entries(sqs, new_queue):
    # Each entry is over the queue's MaximumMessageSize (a per-entry failure), and the batch is
    # over 1 MiB: the whole request fails, nothing is sent.
    url = new_queue({"MaximumMessageSize": 1024})
    with expect_error(sqs, "BatchRequestTooLong"):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "a", "MessageBody": "x" * 600_000}, {"Id": "b", "MessageBody": "x" * 600_000},
            {"Id": "c", "MessageBody": "small"}])
    assert receive(sqs, url) == []


@pytest.mark.parametrize("entry,message", [
    ({"MessageDeduplicationId": "d"}, "The request must contain the parameter MessageGroupId."),
    ({"MessageGroupId": "g"},
     "The queue should either have ContentBasedDeduplication enabled or "
     "MessageDeduplicationId provided explicitly"),
], ids=["no-group-id", "no-deduplication-id"])
def test_a_fifo_batch_with_an_entry_missing_an_id_fails_whole(sqs, new_queue, entry, message):
    url = new_queue(fifo=True)
    good = {"MessageGroupId": "g", "MessageDeduplicationId": "ok"}
    with expect_error(sqs, "InvalidParameterValue") as err:
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": "good", "MessageBody": "fine", **good},
            {"Id": "bad", "MessageBody": "lacking", **entry}])
    assert err.message == message
    assert queue_attributes(sqs, url, "ApproximateNumberOfMessages") == {
        "ApproximateNumberOfMessages": "0"}


def test_a_fifo_batch_needs_no_deduplication_id_with_content_based_deduplication(sqs, new_queue):
    url = new_queue({"ContentBasedDeduplication": "true"}, fifo=True)
    resp = sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "a", "MessageBody": "a", "MessageGroupId": "g"},
        {"Id": "b", "MessageBody": "b", "MessageGroupId": "g"}])
    assert sorted(r["Id"] for r in resp["Successful"]) == ["a", "b"]
    with expect_error(sqs, "InvalidParameterValue") as err:
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "c", "MessageBody": "c"}])
    assert err.message == "The request must contain the parameter MessageGroupId."


# --- DeleteMessageBatch -----------------------------------------------------------------------


def test_delete_message_batch_deletes_and_reports_invalid_handles(sqs, queue):
    send_bodies(sqs, queue, ["a", "b", "c"])
    msgs = _received(sqs, queue, 3, VisibilityTimeout=1)
    entries = [{"Id": f"d{i}", "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(msgs)]
    entries.append({"Id": "bogus", "ReceiptHandle": "not-a-receipt-handle"})
    resp = sqs.delete_message_batch(QueueUrl=queue, Entries=entries)
    assert {r["Id"] for r in resp["Successful"]} == {"d0", "d1", "d2"}
    [failed] = resp["Failed"]
    assert failed["Id"] == "bogus"
    assert failed["SenderFault"] is True
    assert failed["Code"] == "ReceiptHandleIsInvalid"
    assert receive(sqs, queue, WaitTimeSeconds=2) == []


@pytest.mark.parametrize("case,error", [
    ("empty", "EmptyBatchRequest"),
    ("eleven", "TooManyEntriesInBatchRequest"),
    ("duplicate-ids", "BatchEntryIdsNotDistinct"),
    ("invalid-id", "InvalidBatchEntryId"),
])
def test_delete_message_batch_errors(sqs, queue, case, error):
    entries = {
        "empty": [],
        "eleven": [{"Id": f"e{i}", "ReceiptHandle": "h"} for i in range(11)],
        "duplicate-ids": [{"Id": "x", "ReceiptHandle": "h1"}, {"Id": "x", "ReceiptHandle": "h2"}],
        "invalid-id": [{"Id": "bad id", "ReceiptHandle": "h"}],
    }[case]
    with expect_error(sqs, error):
        sqs.delete_message_batch(QueueUrl=queue, Entries=entries)


# --- ChangeMessageVisibilityBatch ---------------------------------------------------------------


def test_change_message_visibility_batch(sqs, queue):
    send_bodies(sqs, queue, ["hide", "show"])
    msgs = {m["Body"]: m for m in _received(sqs, queue, 2)}
    resp = sqs.change_message_visibility_batch(QueueUrl=queue, Entries=[
        {"Id": "hide", "ReceiptHandle": msgs["hide"]["ReceiptHandle"], "VisibilityTimeout": 60},
        {"Id": "show", "ReceiptHandle": msgs["show"]["ReceiptHandle"], "VisibilityTimeout": 0},
        {"Id": "bogus", "ReceiptHandle": "not-a-receipt-handle", "VisibilityTimeout": 0},
    ])
    assert {r["Id"] for r in resp["Successful"]} == {"hide", "show"}
    [failed] = resp["Failed"]
    assert failed["Id"] == "bogus"
    assert failed["SenderFault"] is True
    assert failed["Code"] == "ReceiptHandleIsInvalid"
    assert [m["Body"] for m in receive_until(sqs, queue, 2, timeout=2)] == ["show"]


@pytest.mark.parametrize("case,error", [
    ("empty", "EmptyBatchRequest"),
    ("eleven", "TooManyEntriesInBatchRequest"),
    ("duplicate-ids", "BatchEntryIdsNotDistinct"),
    ("invalid-id", "InvalidBatchEntryId"),
])
def test_change_message_visibility_batch_errors(sqs, queue, case, error):
    entry = {"ReceiptHandle": "h", "VisibilityTimeout": 5}
    entries = {
        "empty": [],
        "eleven": [{"Id": f"e{i}", **entry} for i in range(11)],
        "duplicate-ids": [{"Id": "x", **entry}, {"Id": "x", **entry}],
        "invalid-id": [{"Id": "bad id", **entry}],
    }[case]
    with expect_error(sqs, error):
        sqs.change_message_visibility_batch(QueueUrl=queue, Entries=entries)
