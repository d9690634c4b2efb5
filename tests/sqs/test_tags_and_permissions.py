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


# --- refused tag requests change nothing ------------------------------------------------------


def test_tag_queue_without_tags_is_missing_parameter(sqs, queue):
    sqs.tag_queue(QueueUrl=queue, Tags={"keep": "me"})
    with expect_error(sqs, "MissingParameter") as err:
        sqs.tag_queue(QueueUrl=queue, Tags={})
    assert err.message == "The request must contain the parameter Tags."
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"keep": "me"}


@pytest.mark.parametrize("keys", [[], [""], ["k" * 129], ["a", "k" * 129]],
                         ids=["no-keys", "empty-key", "129-chars", "one-good-one-long"])
def test_untag_queue_with_invalid_keys_is_invalid_parameter_value(sqs, queue, keys):
    sqs.tag_queue(QueueUrl=queue, Tags={"a": "1", "b": "2"})
    with expect_error(sqs, "InvalidParameterValue") as err:
        sqs.untag_queue(QueueUrl=queue, TagKeys=keys)
    assert err.message == "Tag keys must be between 1 and 128 characters in length."
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"a": "1", "b": "2"}


def test_untag_queue_accepts_a_128_character_key(sqs, queue):
    key = "k" * 128
    sqs.tag_queue(QueueUrl=queue, Tags={key: "v", "other": "w"})
    sqs.untag_queue(QueueUrl=queue, TagKeys=[key])
    assert sqs.list_queue_tags(QueueUrl=queue)["Tags"] == {"other": "w"}


# --- AddPermission: what can be granted, and the policy it writes -----------------------------

OWNER_ONLY_ACTIONS = [
    "AddPermission", "RemovePermission", "SetQueueAttributes", "CreateQueue", "DeleteQueue",
    "ListQueues", "ListQueueTags", "TagQueue", "UntagQueue", "StartMessageMoveTask",
    "ListMessageMoveTasks", "CancelMessageMoveTask",
]


@pytest.mark.parametrize("action", OWNER_ONLY_ACTIONS)
def test_add_permission_refuses_actions_only_the_owner_may_call(sqs, queue, action):
    with expect_error(sqs, "InvalidParameterValue") as err:
        sqs.add_permission(QueueUrl=queue, Label="l", AWSAccountIds=["111122223333"],
                           Actions=["SendMessage", action])
    assert err.message == (
        f"Value SQS:{action} for parameter ActionName is invalid. "
        "Reason: Only the queue owner is allowed to invoke this action.")
    assert "Policy" not in queue_attributes(sqs, queue, "Policy")


@pytest.mark.parametrize("action", ["SendMessageBatch", "Frobnicate"])
def test_add_permission_refuses_actions_that_are_not_grantable(sqs, queue, action):
    with expect_error(sqs, "InvalidParameterValue") as err:
        sqs.add_permission(QueueUrl=queue, Label="l", AWSAccountIds=["111122223333"],
                           Actions=[action])
    assert err.message == (
        f"Value SQS:{action} for parameter ActionName is invalid. "
        "Reason: Please refer to the appropriate WSDL for a list of valid actions.")


def test_add_permission_with_more_than_seven_actions_is_over_limit(sqs, queue):
    actions = ["SendMessage", "ReceiveMessage", "DeleteMessage", "ChangeMessageVisibility",
               "GetQueueAttributes", "GetQueueUrl", "ListDeadLetterSourceQueues", "PurgeQueue"]
    with expect_error(sqs, "OverLimit") as err:
        sqs.add_permission(QueueUrl=queue, Label="l", AWSAccountIds=["111122223333"],
                           Actions=actions)
    assert err.message == "8 Actions were found, maximum allowed is 7."
    sqs.add_permission(QueueUrl=queue, Label="l", AWSAccountIds=["111122223333"],
                       Actions=actions[:7])
    assert len(json.loads(queue_attributes(sqs, queue, "Policy")["Policy"])["Statement"]) == 1


def test_add_permission_writes_the_policy_sqs_writes(sqs, queue):
    arn = queue_attributes(sqs, queue, "QueueArn")["QueueArn"]
    sqs.add_permission(QueueUrl=queue, Label="one", AWSAccountIds=["111122223333"],
                       Actions=["SendMessage"])
    sqs.add_permission(QueueUrl=queue, Label="several",
                       AWSAccountIds=["111122223333", "444455556666"],
                       Actions=["ReceiveMessage", "DeleteMessage"])
    policy = json.loads(queue_attributes(sqs, queue, "Policy")["Policy"])
    assert policy == {
        "Version": "2008-10-17",
        "Id": f"{arn}/SQSDefaultPolicy",
        "Statement": [
            {"Sid": "one", "Effect": "Allow",
             "Principal": {"AWS": "arn:aws:iam::111122223333:root"},
             "Action": "SQS:SendMessage", "Resource": arn},
            {"Sid": "several", "Effect": "Allow",
             "Principal": {"AWS": ["arn:aws:iam::111122223333:root",
                                   "arn:aws:iam::444455556666:root"]},
             "Action": ["SQS:ReceiveMessage", "SQS:DeleteMessage"], "Resource": arn},
        ],
    }


def test_add_permission_adds_to_a_policy_with_a_single_statement_object(sqs, queue):
    statement = {"Sid": "own", "Effect": "Allow", "Principal": "*",
                 "Action": "sqs:SendMessage", "Resource": "*"}
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={
        "Policy": json.dumps({"Version": "2012-10-17", "Statement": statement})})
    sqs.add_permission(QueueUrl=queue, Label="added", AWSAccountIds=["111122223333"],
                       Actions=["DeleteMessage"])
    policy = json.loads(queue_attributes(sqs, queue, "Policy")["Policy"])
    assert policy["Version"] == "2012-10-17"
    assert [s["Sid"] for s in policy["Statement"]] == ["own", "added"]
