"""One set of queues: what the SQS API creates the native API sees, and the other way round."""

import json

from conftest import raw_request, receive_until, unique_name


def _native(endpoint, method, path, payload=None):
    body = json.dumps(payload).encode() if payload is not None else b""
    headers = {"Content-Type": "application/json"} if payload is not None else {}
    return raw_request(endpoint, method, path, body, headers)


def test_a_queue_created_through_sqs_is_visible_to_the_native_api(sqs, baton_endpoint):
    name = unique_name()
    sqs.create_queue(QueueName=name)
    resp = _native(baton_endpoint, "GET", f"/v1/queues/{name}")
    assert resp.status == 200, resp
    assert resp.json()["name"] == name


def test_a_queue_created_through_the_native_api_is_visible_to_sqs(sqs, baton_endpoint):
    name = unique_name()
    resp = _native(baton_endpoint, "PUT", f"/v1/queues/{name}")
    assert resp.status in (200, 201), resp
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    assert url == f"{baton_endpoint}/000000000000/{name}"
    assert url in sqs.list_queues(QueueNamePrefix=name)["QueueUrls"]


def test_messages_cross_between_the_apis(sqs, baton_endpoint):
    name = unique_name()
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="from sqs")
    resp = _native(baton_endpoint, "POST", f"/v1/queues/{name}/receive", {"max": 10, "wait_ms": 1000})
    assert resp.status == 200, resp
    assert [m["body"] for m in resp.json()["messages"]] == ["from sqs"]

    resp = _native(baton_endpoint, "POST", f"/v1/queues/{name}/messages",
                   {"messages": [{"body": "from native"}]})
    assert resp.status in (200, 201), resp
    assert [m["Body"] for m in receive_until(sqs, url, 1)] == ["from native"]
