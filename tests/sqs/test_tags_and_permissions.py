"""TagQueue, UntagQueue, ListQueueTags, AddPermission and RemovePermission (API Reference).

Baton does not enforce queue policies; AddPermission and RemovePermission must still be accepted
and show up in the queue's Policy attribute, as they do in SQS."""

import json

import pytest

from conftest import ACCOUNT_ID, expect_error, queue_attributes


@pytest.fixture
def queue(new_queue):
    return new_queue()


def test_a_new_queue_has_no_tags(sqs, queue):
    assert sqs.list_queue_tags(QueueUrl=queue).get("Tags", {}) == {}


def test_tag_queue_adds_and_overwrites(sqs, queue):
    sqs.tag_queue(QueueUrl=queue, Tags={"team": "core", "env": "dev"})
    sqs.tag_queue(QueueUrl=queue, Tags={"env": "prod", "cost-center": "42"})
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {
        "team": "core", "env": "prod", "cost-center": "42"}


def test_tags_are_case_sensitive(sqs, queue):
    sqs.tag_queue(QueueUrl=queue, Tags={"Env": "A", "env": "b"})
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"Env": "A", "env": "b"}


def test_untag_queue_removes_only_the_named_keys(sqs, queue):
    sqs.tag_queue(QueueUrl=queue, Tags={"a": "1", "b": "2", "c": "3"})
    sqs.untag_queue(QueueUrl=queue, TagKeys=["a", "c", "not-there"])
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"b": "2"}


def test_tags_given_at_creation_can_be_removed(sqs, new_queue):
    url = new_queue(tags={"k": "v"})
    sqs.untag_queue(QueueUrl=url, TagKeys=["k"])
    assert sqs.list_queue_tags(QueueUrl=url).get("Tags", {}) == {}


def _policy_sids(sqs, url):
    policy = queue_attributes(sqs, url, "Policy").get("Policy")
    if not policy:
        return set()
    return {statement.get("Sid") for statement in json.loads(policy)["Statement"]}


def test_add_permission_appears_in_the_policy_attribute(sqs, queue):
    sqs.add_permission(QueueUrl=queue, Label="AllowSend", AWSAccountIds=["111122223333"],
                       Actions=["SendMessage"])
    sqs.add_permission(QueueUrl=queue, Label="AllowReceive",
                       AWSAccountIds=["111122223333", ACCOUNT_ID],
                       Actions=["ReceiveMessage", "DeleteMessage"])
    policy = json.loads(queue_attributes(sqs, queue, "Policy")["Policy"])
    by_sid = {s["Sid"]: s for s in policy["Statement"]}
    assert set(by_sid) == {"AllowSend", "AllowReceive"}
    assert by_sid["AllowSend"]["Effect"] == "Allow"
    assert "SendMessage" in json.dumps(by_sid["AllowSend"]["Action"])
    assert "111122223333" in json.dumps(by_sid["AllowSend"]["Principal"])
    assert "Policy" in queue_attributes(sqs, queue, "All")


def test_remove_permission_removes_its_statement(sqs, queue):
    sqs.add_permission(QueueUrl=queue, Label="one", AWSAccountIds=["111122223333"],
                       Actions=["SendMessage"])
    sqs.add_permission(QueueUrl=queue, Label="two", AWSAccountIds=["111122223333"],
                       Actions=["*"])
    sqs.remove_permission(QueueUrl=queue, Label="one")
    assert _policy_sids(sqs, queue) == {"two"}
    sqs.remove_permission(QueueUrl=queue, Label="two")
    assert _policy_sids(sqs, queue) == set()


def test_a_queue_still_works_after_permissions_change(sqs, queue):
    sqs.add_permission(QueueUrl=queue, Label="deny-nothing", AWSAccountIds=["111122223333"],
                       Actions=["SendMessage"])
    sqs.send_message(QueueUrl=queue, MessageBody="still fine")
    assert sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1)["Messages"][0]["Body"] == (
        "still fine")


def test_set_policy_attribute_directly(sqs, queue):
    policy = {
        "Version": "2012-10-17",
        "Id": "custom",
        "Statement": [{"Sid": "s1", "Effect": "Allow", "Principal": "*",
                       "Action": "sqs:SendMessage", "Resource": "*"}],
    }
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"Policy": json.dumps(policy)})
    assert json.loads(queue_attributes(sqs, queue, "Policy")["Policy"]) == policy


def test_tag_actions_on_a_missing_queue(sqs, baton_endpoint):
    url = f"{baton_endpoint}/{ACCOUNT_ID}/no-such-queue-for-tags"
    with expect_error(sqs, "QueueDoesNotExist"):
        sqs.tag_queue(QueueUrl=url, Tags={"a": "b"})
    with expect_error(sqs, "QueueDoesNotExist"):
        sqs.untag_queue(QueueUrl=url, TagKeys=["a"])
