"""CreateQueue, GetQueueUrl, ListQueues, DeleteQueue, PurgeQueue (API Reference)."""

import pytest

from conftest import (
    ACCOUNT_ID,
    expect_error,
    queue_attributes,
    queue_url_for,
    receive,
    send_bodies,
    unique_name,
)


def test_create_queue_returns_a_url_on_this_endpoint(sqs, baton_endpoint):
    name = unique_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert url == queue_url_for(baton_endpoint, name)
    assert url.split("/")[-2] == ACCOUNT_ID


def test_create_queue_applies_attributes(sqs):
    attrs = {
        "DelaySeconds": "5",
        "MaximumMessageSize": "2048",
        "MessageRetentionPeriod": "3600",
        "ReceiveMessageWaitTimeSeconds": "2",
        "VisibilityTimeout": "45",
    }
    url = sqs.create_queue(QueueName=unique_name(), Attributes=attrs)["QueueUrl"]
    got = queue_attributes(sqs, url, *attrs)
    assert got == attrs


def test_create_queue_defaults_are_the_documented_ones(sqs):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    got = queue_attributes(sqs, url)
    assert {k: got.get(k) for k in (
        "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
        "ReceiveMessageWaitTimeSeconds", "VisibilityTimeout",
    )} == {
        "DelaySeconds": "0",
        "MaximumMessageSize": "1048576",
        "MessageRetentionPeriod": "345600",
        "ReceiveMessageWaitTimeSeconds": "0",
        "VisibilityTimeout": "30",
    }
    assert "FifoQueue" not in got


def test_create_queue_with_tags(sqs):
    url = sqs.create_queue(QueueName=unique_name(), tags={"team": "core", "env": "test"})["QueueUrl"]
    assert sqs.list_queue_tags(QueueUrl=url)["Tags"] == {"team": "core", "env": "test"}


def test_create_queue_is_idempotent_with_the_same_attributes(sqs):
    name = unique_name()
    first = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})["QueueUrl"]
    again = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})["QueueUrl"]
    assert again == first


def test_create_queue_with_different_attributes_is_queue_name_exists(sqs):
    name = unique_name()
    sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "40"})
    with expect_error(sqs, "QueueNameExists"):
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "41"})


@pytest.mark.parametrize("name", [
    "has space",
    "has.dot",
    "slash/inside",
    "x" * 81,
    "",
], ids=["space", "dot", "slash", "81-chars", "empty"])
def test_create_queue_rejects_invalid_names(sqs, name):
    with expect_error(sqs, "InvalidParameterValue"):
        sqs.create_queue(QueueName=name)


def test_create_queue_accepts_an_80_character_name(sqs):
    name = unique_name("n")
    name = name + "_" * (80 - len(name))
    assert sqs.create_queue(QueueName=name)["QueueUrl"].endswith("/" + name)


@pytest.mark.parametrize("attribute,value", [
    ("DelaySeconds", "901"),
    ("DelaySeconds", "-1"),
    ("MaximumMessageSize", "1023"),
    ("MaximumMessageSize", "1048577"),
    ("MessageRetentionPeriod", "59"),
    ("MessageRetentionPeriod", "1209601"),
    ("ReceiveMessageWaitTimeSeconds", "21"),
    ("VisibilityTimeout", "43201"),
    ("VisibilityTimeout", "soon"),
])
def test_create_queue_rejects_invalid_attribute_values(sqs, attribute, value):
    with expect_error(sqs, "InvalidAttributeValue"):
        sqs.create_queue(QueueName=unique_name(), Attributes={attribute: value})


def test_create_queue_rejects_unknown_attribute_names(sqs):
    with expect_error(sqs, "InvalidAttributeName"):
        sqs.create_queue(QueueName=unique_name(), Attributes={"NoSuchAttribute": "1"})


def test_get_queue_url_of_an_existing_queue(sqs, baton_endpoint):
    name = unique_name()
    created = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert sqs.get_queue_url(QueueName=name)["QueueUrl"] == created == queue_url_for(
        baton_endpoint, name)


def test_get_queue_url_with_the_owner_account_id(sqs):
    name = unique_name()
    created = sqs.create_queue(QueueName=name)["QueueUrl"]
    got = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=ACCOUNT_ID)["QueueUrl"]
    assert got == created


def test_get_queue_url_of_a_missing_queue_is_queue_does_not_exist(sqs):
    with expect_error(sqs, "QueueDoesNotExist") as err:
        sqs.get_queue_url(QueueName=unique_name("missing"))
    assert err.message


def test_queue_names_are_case_sensitive(sqs):
    name = unique_name("CaseQ")
    sqs.create_queue(QueueName=name)
    with expect_error(sqs, "QueueDoesNotExist"):
        sqs.get_queue_url(QueueName=name.lower())


def test_list_queues_filters_by_prefix(sqs, baton_endpoint):
    prefix = unique_name("lp")
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        sqs.create_queue(QueueName=name)
    sqs.create_queue(QueueName=unique_name("other"))
    urls = sqs.list_queues(QueueNamePrefix=prefix).get("QueueUrls", [])
    assert sorted(urls) == sorted(queue_url_for(baton_endpoint, n) for n in names)


def test_list_queues_without_a_prefix_includes_new_queues(sqs):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    resp = sqs.list_queues()
    urls = resp["QueueUrls"]
    assert len(urls) <= 1000  # at most 1,000 results without MaxResults
    assert url in urls or len(urls) == 1000
    assert "NextToken" not in resp  # no MaxResults: no NextToken


def test_list_queues_with_an_unmatched_prefix_is_empty(sqs):
    resp = sqs.list_queues(QueueNamePrefix=unique_name("nothing-has-this-prefix"))
    assert resp.get("QueueUrls", []) == []


def test_list_queues_pages_with_max_results_and_next_token(sqs, baton_endpoint):
    prefix = unique_name("page")
    names = [f"{prefix}-{i}" for i in range(5)]
    for name in names:
        sqs.create_queue(QueueName=name)
    seen, pages, token = [], 0, None
    while True:
        params = {"QueueNamePrefix": prefix, "MaxResults": 2}
        if token:
            params["NextToken"] = token
        resp = sqs.list_queues(**params)
        page = resp.get("QueueUrls", [])
        assert len(page) <= 2
        seen += page
        pages += 1
        token = resp.get("NextToken")
        if not token:
            break
        assert pages < 10, "NextToken never ends"
    assert sorted(seen) == sorted(queue_url_for(baton_endpoint, n) for n in names)
    assert pages == 3


def test_delete_queue_removes_it(sqs):
    name = unique_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    send_bodies(sqs, url, ["a", "b"])
    sqs.delete_queue(QueueUrl=url)
    with expect_error(sqs, "QueueDoesNotExist"):
        sqs.get_queue_url(QueueName=name)
    assert url not in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])


def test_delete_missing_queue_is_queue_does_not_exist(sqs, baton_endpoint):
    with expect_error(sqs, "QueueDoesNotExist"):
        sqs.delete_queue(QueueUrl=queue_url_for(baton_endpoint, unique_name("missing")))


@pytest.mark.parametrize("action,params", [
    ("send_message", {"MessageBody": "x"}),
    ("receive_message", {}),
    ("get_queue_attributes", {"AttributeNames": ["All"]}),
    ("purge_queue", {}),
    ("list_queue_tags", {}),
])
def test_actions_on_a_missing_queue_are_queue_does_not_exist(sqs, baton_endpoint, action, params):
    url = queue_url_for(baton_endpoint, unique_name("missing"))
    with expect_error(sqs, "QueueDoesNotExist"):
        getattr(sqs, action)(QueueUrl=url, **params)


def test_purge_queue_deletes_visible_and_in_flight_messages(sqs):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    send_bodies(sqs, url, ["a", "b", "c"])
    assert len(receive(sqs, url, MaxNumberOfMessages=1)) == 1
    sqs.purge_queue(QueueUrl=url)
    attrs = queue_attributes(sqs, url, "ApproximateNumberOfMessages",
                             "ApproximateNumberOfMessagesNotVisible")
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
    assert receive(sqs, url, MaxNumberOfMessages=10, WaitTimeSeconds=1) == []


def test_second_purge_within_60_seconds_is_purge_queue_in_progress(sqs):
    url = sqs.create_queue(QueueName=unique_name())["QueueUrl"]
    sqs.purge_queue(QueueUrl=url)
    with expect_error(sqs, "PurgeQueueInProgress"):
        sqs.purge_queue(QueueUrl=url)
