"""Dead-letter queues and message move tasks: RedrivePolicy, ListDeadLetterSourceQueues,
StartMessageMoveTask, ListMessageMoveTasks, CancelMessageMoveTask (API Reference; Developer
Guide "Using dead-letter queues" and "Configure a dead-letter queue redrive")."""

import json
import time

import pytest

from conftest import (
    expect_error,
    queue_arn_for,
    queue_attributes,
    receive,
    receive_until,
    send_bodies,
    unique_name,
    wait_for,
)

TERMINAL_TASK_STATES = {"COMPLETED", "CANCELLED", "FAILED"}


def _make_pair(sqs, max_receive_count, visibility=1, fifo=False):
    """A dead-letter queue and a source queue redriving to it; returns (src, dlq) as
    (url, arn) pairs."""
    dlq_name = unique_name("dlq", fifo=fifo)
    src_name = unique_name("src", fifo=fifo)
    extra = {"FifoQueue": "true"} if fifo else {}
    dlq_url = sqs.create_queue(QueueName=dlq_name, Attributes=extra)["QueueUrl"]
    policy = {"deadLetterTargetArn": queue_arn_for(dlq_name), "maxReceiveCount": max_receive_count}
    src_url = sqs.create_queue(QueueName=src_name, Attributes={
        **extra, "VisibilityTimeout": str(visibility), "RedrivePolicy": json.dumps(policy)},
    )["QueueUrl"]
    return (src_url, queue_arn_for(src_name)), (dlq_url, queue_arn_for(dlq_name))


def _count(sqs, url):
    return int(queue_attributes(sqs, url, "ApproximateNumberOfMessages")[
        "ApproximateNumberOfMessages"])


def _dead_letter(sqs, src_url, dlq_url, bodies):
    """Sends ``bodies`` to a source queue with maxReceiveCount 1 and fails each delivery once,
    so that all of them end up in the dead-letter queue."""
    send_bodies(sqs, src_url, bodies)
    got = receive_until(sqs, src_url, len(bodies), VisibilityTimeout=30)
    assert len(got) == len(bodies)
    for start in range(0, len(got), 10):
        chunk = got[start:start + 10]
        resp = sqs.change_message_visibility_batch(QueueUrl=src_url, Entries=[
            {"Id": f"r{i}", "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(chunk)])
        assert not resp.get("Failed")
    # The next receive attempt finds each message over its maxReceiveCount (SQS moves it then
    # at the latest).
    assert receive(sqs, src_url, MaxNumberOfMessages=10, WaitTimeSeconds=1) == []
    wait_for(lambda: _count(sqs, dlq_url) == len(bodies), timeout=10,
             what=f"{len(bodies)} messages in the dead-letter queue")


def _latest_task(sqs, source_arn):
    results = sqs.list_message_move_tasks(SourceArn=source_arn).get("Results", [])
    assert len(results) == 1  # MaxResults defaults to 1: the most recent task
    return results[0]


def test_message_moves_to_the_dead_letter_queue_after_max_receive_count(sqs):
    (src, src_arn), (dlq, _) = _make_pair(sqs, max_receive_count=2)
    sent = sqs.send_message(QueueUrl=src, MessageBody="poison",
                            MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
    for expected_count in ("1", "2"):
        [msg] = receive_until(sqs, src, 1, MessageSystemAttributeNames=["ApproximateReceiveCount"])
        assert msg["Attributes"]["ApproximateReceiveCount"] == expected_count
        time.sleep(1.2)  # let the visibility timeout (1 s) expire: a failed receive
    assert receive(sqs, src, WaitTimeSeconds=1) == []
    [dead] = receive_until(sqs, dlq, 1, MessageAttributeNames=["All"],
                           MessageSystemAttributeNames=["All"])
    assert dead["Body"] == "poison"
    assert dead["MessageId"] == sent["MessageId"]
    assert dead["MessageAttributes"] == {"k": {"DataType": "String", "StringValue": "v"}}
    assert dead["Attributes"]["DeadLetterQueueSourceArn"] == src_arn


def test_messages_under_max_receive_count_stay_in_the_source_queue(sqs):
    (src, _), (dlq, _) = _make_pair(sqs, max_receive_count=3)
    sqs.send_message(QueueUrl=src, MessageBody="flaky")
    for _ in range(2):
        assert len(receive_until(sqs, src, 1)) == 1
        time.sleep(1.2)
    [msg] = receive_until(sqs, src, 1)
    assert msg["Body"] == "flaky"
    assert _count(sqs, dlq) == 0


def test_fifo_dead_letter_queue(sqs):
    (src, _), (dlq, _) = _make_pair(sqs, max_receive_count=1, fifo=True)
    sqs.send_message(QueueUrl=src, MessageBody="fifo poison", MessageGroupId="g",
                     MessageDeduplicationId="d")
    assert len(receive_until(sqs, src, 1)) == 1
    time.sleep(1.2)
    assert receive(sqs, src, WaitTimeSeconds=1) == []
    [dead] = receive_until(sqs, dlq, 1, MessageSystemAttributeNames=["MessageGroupId"])
    assert dead["Body"] == "fifo poison"
    assert dead["Attributes"]["MessageGroupId"] == "g"


def test_list_dead_letter_source_queues(sqs):
    (src, _), (dlq, dlq_arn) = _make_pair(sqs, max_receive_count=5)
    other_src = sqs.create_queue(QueueName=unique_name("src2"), Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})[
        "QueueUrl"]
    sqs.create_queue(QueueName=unique_name("unrelated"))
    urls = sqs.list_dead_letter_source_queues(QueueUrl=dlq)["queueUrls"]
    assert sorted(urls) == sorted([src, other_src])


def test_list_dead_letter_source_queues_pages(sqs):
    (src, _), (dlq, dlq_arn) = _make_pair(sqs, max_receive_count=5)
    more = [sqs.create_queue(QueueName=unique_name("src"), Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2})})[
        "QueueUrl"] for _ in range(2)]
    first = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=2)
    assert len(first["queueUrls"]) == 2 and first.get("NextToken")
    second = sqs.list_dead_letter_source_queues(QueueUrl=dlq, MaxResults=2,
                                                NextToken=first["NextToken"])
    assert sorted(first["queueUrls"] + second["queueUrls"]) == sorted([src] + more)
    assert not second.get("NextToken")


def test_list_dead_letter_source_queues_of_a_queue_without_sources_is_empty(sqs, new_queue):
    url = new_queue()
    assert sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", []) == []


def test_removing_the_redrive_policy(sqs):
    (src, _), (dlq, _) = _make_pair(sqs, max_receive_count=5)
    sqs.set_queue_attributes(QueueUrl=src, Attributes={"RedrivePolicy": ""})
    assert "RedrivePolicy" not in queue_attributes(sqs, src, "All")
    assert sqs.list_dead_letter_source_queues(QueueUrl=dlq).get("queueUrls", []) == []


# --- message move tasks -------------------------------------------------------------------------


def test_move_task_redrives_dead_letters_back_to_their_source(sqs):
    (src, src_arn), (dlq, dlq_arn) = _make_pair(sqs, max_receive_count=1)
    bodies = [f"redrive {i}" for i in range(5)]
    _dead_letter(sqs, src, dlq, bodies)

    handle = sqs.start_message_move_task(SourceArn=dlq_arn)["TaskHandle"]
    assert handle
    task = wait_for(lambda: (t := _latest_task(sqs, dlq_arn))["Status"] in TERMINAL_TASK_STATES
                    and t, timeout=15, what="the move task to finish")
    assert task["Status"] == "COMPLETED"
    assert task["SourceArn"] == dlq_arn
    assert task["ApproximateNumberOfMessagesMoved"] == 5
    assert task.get("DestinationArn") in (None, src_arn)
    assert task["StartedTimestamp"] > 0
    moved = receive_until(sqs, src, 5)
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    assert _count(sqs, dlq) == 0


def test_move_task_to_an_explicit_destination(sqs):
    (src, _), (dlq, dlq_arn) = _make_pair(sqs, max_receive_count=1)
    dest_name = unique_name("dest")
    dest = sqs.create_queue(QueueName=dest_name)["QueueUrl"]
    _dead_letter(sqs, src, dlq, ["a", "b"])
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=queue_arn_for(dest_name),
                                MaxNumberOfMessagesPerSecond=100)
    task = wait_for(lambda: (t := _latest_task(sqs, dlq_arn))["Status"] in TERMINAL_TASK_STATES
                    and t, timeout=15, what="the move task to finish")
    assert task["Status"] == "COMPLETED"
    assert task["DestinationArn"] == queue_arn_for(dest_name)
    assert task["MaxNumberOfMessagesPerSecond"] == 100
    assert sorted(m["Body"] for m in receive_until(sqs, dest, 2)) == ["a", "b"]
    assert receive(sqs, src) == []


def test_cancel_a_running_move_task(sqs):
    (src, _), (dlq, dlq_arn) = _make_pair(sqs, max_receive_count=1)
    _dead_letter(sqs, src, dlq, [f"slow {i}" for i in range(20)])
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=1)[
        "TaskHandle"]
    assert _latest_task(sqs, dlq_arn)["Status"] == "RUNNING"
    cancelled = sqs.cancel_message_move_task(TaskHandle=handle)
    moved_at_cancel = cancelled["ApproximateNumberOfMessagesMoved"]
    assert 0 <= moved_at_cancel < 20
    assert _latest_task(sqs, dlq_arn)["Status"] in ("CANCELLING", "CANCELLED")
    task = wait_for(lambda: (t := _latest_task(sqs, dlq_arn))["Status"] == "CANCELLED" and t,
                    timeout=10, what="the task to be cancelled")
    assert task["ApproximateNumberOfMessagesMoved"] < 20
    # What was not moved stays in the dead-letter queue.
    time.sleep(1.5)
    assert _count(sqs, dlq) + _count(sqs, src) == 20
    assert _count(sqs, dlq) > 0


def test_list_message_move_tasks_max_results(sqs):
    (src, _), (dlq, dlq_arn) = _make_pair(sqs, max_receive_count=1)
    for round_ in range(2):
        _dead_letter(sqs, src, dlq, [f"round {round_}"])
        sqs.start_message_move_task(SourceArn=dlq_arn)
        wait_for(lambda: _latest_task(sqs, dlq_arn)["Status"] in TERMINAL_TASK_STATES,
                 timeout=15, what="the move task to finish")
        for m in receive_until(sqs, src, 1):
            sqs.delete_message(QueueUrl=src, ReceiptHandle=m["ReceiptHandle"])
    results = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10)["Results"]
    assert len(results) == 2
    assert all(r["Status"] == "COMPLETED" for r in results)
    # Most recent first.
    assert results[0]["StartedTimestamp"] >= results[1]["StartedTimestamp"]


def test_start_message_move_task_on_a_missing_queue_is_resource_not_found(sqs):
    with expect_error(sqs, "ResourceNotFoundException"):
        sqs.start_message_move_task(SourceArn=queue_arn_for(unique_name("missing")))


def test_cancel_an_unknown_move_task_is_resource_not_found(sqs):
    with expect_error(sqs, "ResourceNotFoundException"):
        sqs.cancel_message_move_task(TaskHandle="not-a-task-handle")


@pytest.mark.parametrize("maximum", [0, 501])
def test_move_rate_out_of_range_is_invalid_parameter_value(sqs, maximum):
    (_, _), (_, dlq_arn) = _make_pair(sqs, max_receive_count=1)
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.start_message_move_task(SourceArn=dlq_arn, MaxNumberOfMessagesPerSecond=maximum)
