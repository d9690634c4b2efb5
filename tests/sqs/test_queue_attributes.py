"""GetQueueAttributes and SetQueueAttributes (API Reference)."""

import json
import time

import pytest

from conftest import expect_error, queue_arn_for, queue_attributes, receive, unique_name

STANDARD_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "DelaySeconds",
    "LastModifiedTimestamp",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "QueueArn",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
]


def test_get_all_attributes_of_a_standard_queue(sqs):
    name = unique_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    attrs = queue_attributes(sqs, url, "All")
    missing = set(STANDARD_ATTRIBUTES) - set(attrs)
    assert not missing, f"All lacks {sorted(missing)}"
    assert attrs["QueueArn"] == queue_arn_for(name)


@pytest.mark.parametrize("attribute", STANDARD_ATTRIBUTES)
def test_get_one_named_attribute_returns_exactly_it(sqs, attribute):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    attrs = queue_attributes(sqs, url, attribute)
    assert list(attrs) == [attribute]
    assert attrs[attribute] != ""


def test_get_attributes_without_names_returns_nothing(sqs):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    resp = sqs.get_queue_attributes(QueueUrl=url)
    assert resp.get("Attributes", {}) == {}


def test_get_an_unknown_attribute_is_invalid_attribute_name(sqs):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    with expect_error(sqs, "InvalidAttributeName"):
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["NoSuchAttribute"])


def test_queue_arn_names_region_account_and_queue(sqs):
    name = unique_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert queue_attributes(sqs, url, "QueueArn") == {
        "QueueArn": f"arn:aws:sqs:us-east-1:000000000000:{name}"}


def test_created_and_last_modified_timestamps_are_epoch_seconds(sqs):
    before = int(time.time())
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    after = int(time.time())
    attrs = queue_attributes(sqs, url, "CreatedTimestamp", "LastModifiedTimestamp")
    created = int(attrs["CreatedTimestamp"])
    assert before - 2 <= created <= after + 2
    assert created <= int(attrs["LastModifiedTimestamp"]) <= after + 2


def test_set_queue_attributes_updates_last_modified_timestamp(sqs):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    created = int(queue_attributes(sqs, url, "CreatedTimestamp")["CreatedTimestamp"])
    time.sleep(1.1)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "60"})
    attrs = queue_attributes(sqs, url, "CreatedTimestamp", "LastModifiedTimestamp")
    assert int(attrs["CreatedTimestamp"]) == created
    assert int(attrs["LastModifiedTimestamp"]) >= created + 1


def test_approximate_counts_follow_visible_in_flight_and_delayed_messages(sqs):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="visible-1")
    sqs.send_message(QueueUrl=url, MessageBody="visible-2")
    sqs.send_message(QueueUrl=url, MessageBody="delayed", DelaySeconds=60)
    names = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed")
    assert queue_attributes(sqs, url, *names) == dict(zip(names, ("2", "0", "1")))
    [msg] = receive(sqs, url, MaxNumberOfMessages=1)
    assert queue_attributes(sqs, url, *names) == dict(zip(names, ("1", "1", "1")))
    sqs.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    assert queue_attributes(sqs, url, *names) == dict(zip(names, ("1", "0", "1")))


@pytest.mark.parametrize("attribute,value", [
    ("DelaySeconds", "0"),
    ("DelaySeconds", "900"),
    ("MaximumMessageSize", "1024"),
    ("MaximumMessageSize", "1048576"),
    ("MessageRetentionPeriod", "60"),
    ("MessageRetentionPeriod", "1209600"),
    ("ReceiveMessageWaitTimeSeconds", "0"),
    ("ReceiveMessageWaitTimeSeconds", "20"),
    ("VisibilityTimeout", "0"),
    ("VisibilityTimeout", "43200"),
])
def test_set_queue_attributes_accepts_the_documented_range(sqs, attribute, value):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={attribute: value})
    assert queue_attributes(sqs, url, attribute) == {attribute: value}


@pytest.mark.parametrize("attribute,value", [
    ("DelaySeconds", "901"),
    ("DelaySeconds", "-1"),
    ("MaximumMessageSize", "1023"),
    ("MaximumMessageSize", "1048577"),
    ("MessageRetentionPeriod", "59"),
    ("MessageRetentionPeriod", "1209601"),
    ("ReceiveMessageWaitTimeSeconds", "21"),
    ("VisibilityTimeout", "43201"),
    ("VisibilityTimeout", "-1"),
    ("VisibilityTimeout", "ten"),
])
def test_set_queue_attributes_rejects_invalid_values(sqs, attribute, value):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    before = queue_attributes(sqs, url, attribute)
    with expect_error(sqs, "InvalidAttributeValue"):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={attribute: value})
    assert queue_attributes(sqs, url, attribute) == before


def test_set_several_attributes_at_once(sqs):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    new = {"DelaySeconds": "3", "VisibilityTimeout": "90", "ReceiveMessageWaitTimeSeconds": "1"}
    sqs.set_queue_attributes(QueueUrl=url, Attributes=new)
    assert queue_attributes(sqs, url, *new) == new


def test_set_an_unknown_attribute_is_invalid_attribute_name(sqs):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    with expect_error(sqs, "InvalidAttributeName"):
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"NoSuchAttribute": "1"})


def test_redrive_policy_is_stored_as_json(sqs):
    dlq_name = unique_name("dlq")
    sqs.create_queue(QueueName=dlq_name)
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    policy = {"deadLetterTargetArn": queue_arn_for(dlq_name), "maxReceiveCount": 4}
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(policy)})
    got = json.loads(queue_attributes(sqs, url, "RedrivePolicy")["RedrivePolicy"])
    assert got["deadLetterTargetArn"] == policy["deadLetterTargetArn"]
    assert int(got["maxReceiveCount"]) == 4
    assert "RedrivePolicy" in queue_attributes(sqs, url, "All")


@pytest.mark.parametrize("policy", [
    {"redrivePermission": "allowAll"},
    {"redrivePermission": "denyAll"},
    {"redrivePermission": "byQueue", "sourceQueueArns": [
        "arn:aws:sqs:us-east-1:000000000000:some-source"]},
], ids=["allowAll", "denyAll", "byQueue"])
def test_redrive_allow_policy_is_stored_as_json(sqs, policy):
    url = sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"RedriveAllowPolicy": json.dumps(policy)})
    got = json.loads(queue_attributes(sqs, url, "RedriveAllowPolicy")["RedriveAllowPolicy"])
    assert got == policy


def test_redrive_allow_policy_at_creation(sqs):
    policy = {"redrivePermission": "allowAll"}
    url = sqs.create_queue(QueueName=unique_name("dlq"),
                           Attributes={"RedriveAllowPolicy": json.dumps(policy)})["QueueUrl"]
    got = json.loads(queue_attributes(sqs, url, "RedriveAllowPolicy")["RedriveAllowPolicy"])
    assert got == policy
