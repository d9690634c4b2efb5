"""Both wire protocols seen raw, without an SDK (Developer Guide "Interpreting Amazon SQS JSON API
responses" and "Interpreting Amazon SQS XML API responses"; API Reference "Common Errors").

Requests here are unsigned: Baton accepts credentials without verifying them, and a missing or
malformed Authorization header is not an error."""

import urllib.parse
import xml.etree.ElementTree as ET

import pytest

from conftest import (
    ACCOUNT_ID,
    QUERY_NAMESPACE,
    expect_error,
    md5_hex,
    queue_url_for,
    raw_json_call,
    raw_query_call,
    raw_request,
    unique_name,
)


def _strip_ns(tag: str) -> str:
    return tag.split("}", 1)[-1]


def _xml(resp):
    return ET.fromstring(resp.body)


def _find(node, path):
    """Finds a descendant by a '/'-separated path of local names (namespaces ignored)."""
    for part in path.split("/"):
        node = next((c for c in node if _strip_ns(c.tag) == part), None)
        if node is None:
            return None
    return node


# --- JSON 1.0 -----------------------------------------------------------------------------------


def test_json_success_response(baton_endpoint):
    name = unique_name()
    resp = raw_json_call(baton_endpoint, "CreateQueue", {"QueueName": name})
    assert resp.status == 200, resp
    assert resp.headers["content-type"].startswith("application/x-amz-json-1.0")
    assert resp.json() == {"QueueUrl": queue_url_for(baton_endpoint, name)}
    assert resp.headers.get("x-amzn-requestid")


def test_json_error_response_has_type_message_and_query_error_header(baton_endpoint):
    resp = raw_json_call(baton_endpoint, "GetQueueUrl", {"QueueName": unique_name("missing")})
    assert resp.status == 400, resp
    assert resp.headers["x-amzn-query-error"] == "AWS.SimpleQueueService.NonExistentQueue;Sender"
    assert resp.headers["content-type"].startswith("application/x-amz-json-1.0")
    assert resp.headers.get("x-amzn-requestid")
    body = resp.json()
    assert body["__type"] == "com.amazonaws.sqs#QueueDoesNotExist"
    assert body["message"]


def test_json_error_for_a_common_error(baton_endpoint):
    name = unique_name()
    raw_json_call(baton_endpoint, "CreateQueue", {"QueueName": name})
    resp = raw_json_call(baton_endpoint, "ReceiveMessage", {
        "QueueUrl": queue_url_for(baton_endpoint, name), "MaxNumberOfMessages": 11})
    assert resp.status == 400, resp
    assert resp.headers["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    body = resp.json()
    assert body["__type"]  # the documentation fixes the shape name only for modeled errors
    assert body["message"]


def test_json_send_and_receive_raw(baton_endpoint):
    name = unique_name()
    url = raw_json_call(baton_endpoint, "CreateQueue", {"QueueName": name}).json()["QueueUrl"]
    sent = raw_json_call(baton_endpoint, "SendMessage", {
        "QueueUrl": url, "MessageBody": "raw <json> & co",
        "MessageAttributes": {"b": {"DataType": "Binary", "BinaryValue": "AAEC"}}})
    assert sent.status == 200, sent
    assert sent.json()["MD5OfMessageBody"] == md5_hex("raw <json> & co")
    got = raw_json_call(baton_endpoint, "ReceiveMessage", {
        "QueueUrl": url, "MessageAttributeNames": ["All"], "WaitTimeSeconds": 1})
    [msg] = got.json()["Messages"]
    assert msg["Body"] == "raw <json> & co"
    assert msg["MessageAttributes"]["b"] == {"DataType": "Binary", "BinaryValue": "AAEC"}


# --- query --------------------------------------------------------------------------------------


def test_query_success_response_structure(baton_endpoint):
    name = unique_name()
    resp = raw_query_call(baton_endpoint, {"Action": "CreateQueue", "QueueName": name})
    assert resp.status == 200, resp
    assert "xml" in resp.headers["content-type"]
    root = _xml(resp)
    assert root.tag == f"{{{QUERY_NAMESPACE}}}CreateQueueResponse"
    assert _find(root, "CreateQueueResult/QueueUrl").text == queue_url_for(baton_endpoint, name)
    assert _find(root, "ResponseMetadata/RequestId").text


def test_query_error_response_structure(baton_endpoint):
    resp = raw_query_call(baton_endpoint, {"Action": "GetQueueUrl",
                                           "QueueName": unique_name("missing")})
    assert resp.status == 400, resp
    root = _xml(resp)
    assert _strip_ns(root.tag) == "ErrorResponse"
    assert _find(root, "Error/Type").text == "Sender"
    assert _find(root, "Error/Code").text == "AWS.SimpleQueueService.NonExistentQueue"
    assert _find(root, "Error/Message").text
    assert _find(root, "RequestId").text


def test_query_unknown_action_is_invalid_action(baton_endpoint):
    resp = raw_query_call(baton_endpoint, {"Action": "NoSuchAction"})
    assert resp.status == 400, resp
    assert _find(_xml(resp), "Error/Code").text == "InvalidAction"


def test_query_request_to_the_queue_url_path(baton_endpoint):
    name = unique_name()
    raw_query_call(baton_endpoint, {"Action": "CreateQueue", "QueueName": name})
    path = f"/{ACCOUNT_ID}/{name}"
    resp = raw_query_call(baton_endpoint, {"Action": "SendMessage", "MessageBody": "via path"},
                          path=path)
    assert resp.status == 200, resp
    root = _xml(resp)
    assert _strip_ns(root.tag) == "SendMessageResponse"
    assert _find(root, "SendMessageResult/MD5OfMessageBody").text == md5_hex("via path")
    assert _find(root, "SendMessageResult/MessageId").text
    got = raw_query_call(baton_endpoint, {"Action": "ReceiveMessage", "WaitTimeSeconds": "1"},
                         path=path)
    assert _find(_xml(got), "ReceiveMessageResult/Message/Body").text == "via path"


def test_query_get_requests(baton_endpoint):
    # Developer Guide, "Making query API requests using AWS query protocol": GET and POST.
    name = unique_name("get")
    raw_query_call(baton_endpoint, {"Action": "CreateQueue", "QueueName": name})
    query = "Action=SendMessage&MessageBody=Your%20message%20text&Version=2012-11-05"
    resp = raw_request(baton_endpoint, "GET", f"/{ACCOUNT_ID}/{name}?{query}")
    assert resp.status == 200, resp
    assert _find(_xml(resp), "SendMessageResult/MD5OfMessageBody").text == md5_hex(
        "Your message text")
    query = urllib.parse.urlencode({"Action": "ListQueues", "QueueNamePrefix": name,
                                    "Version": "2012-11-05"})
    resp = raw_request(baton_endpoint, "GET", f"/?{query}")
    assert resp.status == 200, resp
    urls = [e.text for e in _find(_xml(resp), "ListQueuesResult")]
    assert urls == [queue_url_for(baton_endpoint, name)]


def test_query_xml_escapes_bodies(baton_endpoint):
    name = unique_name()
    url = queue_url_for(baton_endpoint, name)
    raw_query_call(baton_endpoint, {"Action": "CreateQueue", "QueueName": name})
    body = "<tag attr=\"v\">a & b ]]> 'c'</tag>\r\n\ttail"
    raw_query_call(baton_endpoint, {"Action": "SendMessage", "QueueUrl": url, "MessageBody": body})
    resp = raw_query_call(baton_endpoint, {"Action": "ReceiveMessage", "QueueUrl": url,
                                           "WaitTimeSeconds": "1"})
    assert _find(_xml(resp), "ReceiveMessageResult/Message/Body").text == body


# --- both ---------------------------------------------------------------------------------------


def test_queue_urls_follow_the_host_header(baton_endpoint):
    port = urllib.parse.urlsplit(baton_endpoint).port
    host = f"localhost:{port}"
    name = unique_name()
    resp = raw_json_call(baton_endpoint, "CreateQueue", {"QueueName": name}, headers={"Host": host})
    assert resp.json()["QueueUrl"] == f"http://{host}/{ACCOUNT_ID}/{name}"
    resp = raw_query_call(baton_endpoint, {"Action": "GetQueueUrl", "QueueName": name},
                          headers={"Host": host})
    assert _find(_xml(resp), "GetQueueUrlResult/QueueUrl").text == f"http://{host}/{ACCOUNT_ID}/{name}"


@pytest.mark.parametrize("authorization", [
    "garbage",
    "AWS4-HMAC-SHA256 Credential=nobody/20200101/xx-nowhere-1/sqs/aws4_request, "
    "SignedHeaders=host, Signature=0000",
], ids=["malformed", "wrong-signature"])
def test_without_keys_authorization_is_not_verified(baton_endpoint, authorization):
    """A server without API keys checks no signature (test_sigv4.py: one with keys does)."""
    name = unique_name()
    resp = raw_json_call(baton_endpoint, "CreateQueue", {"QueueName": name},
                         headers={"Authorization": authorization})
    assert resp.status == 200, resp
    resp = raw_query_call(baton_endpoint, {"Action": "GetQueueUrl", "QueueName": name},
                          headers={"Authorization": authorization})
    assert resp.status == 200, resp


def test_create_queue_without_a_name_is_missing_parameter(sqs):
    with expect_error(sqs, "MissingParameter"):
        sqs.create_queue()


def test_get_queue_url_without_a_name_is_missing_parameter(sqs):
    with expect_error(sqs, "MissingParameter"):
        sqs.get_queue_url()


def test_a_queue_is_the_same_through_both_protocols(sqs_json, sqs_query):
    name = unique_name()
    url = sqs_json.create_queue(QueueName=name)["QueueUrl"]
    assert sqs_query.get_queue_url(QueueName=name)["QueueUrl"] == url
    sqs_query.send_message(QueueUrl=url, MessageBody="from query",
                           MessageAttributes={"p": {"DataType": "String", "StringValue": "q"}})
    [msg] = sqs_json.receive_message(QueueUrl=url, WaitTimeSeconds=1,
                                     MessageAttributeNames=["All"])["Messages"]
    assert msg["Body"] == "from query"
    assert msg["MessageAttributes"] == {"p": {"DataType": "String", "StringValue": "q"}}
    sqs_query.delete_message(QueueUrl=url, ReceiptHandle=msg["ReceiptHandle"])
    attrs = sqs_query.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert attrs == {"ApproximateNumberOfMessagesNotVisible": "0"}
