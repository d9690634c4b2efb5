"""Checks of the test harness itself, without a server.

* The MD5 helper against published reference values (so a failing MD5 assertion elsewhere
  points at the server, not at the helper).
* The query-protocol client against the wire names of the SQS query API (API Reference query
  examples): a request built by ``sqs_query`` must look like the ones in the documentation,
  and a documented XML response must parse.
"""

import urllib.parse

import pytest
from botocore.awsrequest import AWSResponse

from conftest import make_client, md5_hex, md5_of_message_attributes

# (attributes, expected MD5OfMessageAttributes) from independent implementations' test vectors
# (the aws-md5-of-message-attributes npm package's README, LocalStack's and sqslite's tests).
REFERENCE_VECTORS = [
    ({"attribName1": {"DataType": "String", "StringValue": "attribValue 1"}},
     "19e27d4e946b072f3f58da80d94fd778"),
    ({"customNumberTypeAttrib": {"DataType": "Number.float",
                                 "StringValue": "4563442423554324324264524243.32543234"}},
     "9fe1b90bbd9965bdf77bac517c7d2495"),
    ({"binaryAttribute": {"DataType": "Binary", "BinaryValue": b"Hello binary world!"}},
     "31a92b15d92f8db860eda32aceb656c3"),
    ({"attribName1": {"DataType": "String", "StringValue": "attribValue 1"},
      "customNumberTypeAttrib": {"DataType": "Number.float",
                                 "StringValue": "4563442423554324324264524243.32543234"},
      "binaryAttribute": {"DataType": "Binary", "BinaryValue": b"Hello binary world!"}},
     "c932db14a896c663f83c260297d594ff"),
    ({"timestamp": {"DataType": "Number", "StringValue": "1493147359900"}},
     "235c5c510d26fb653d073faed50ae77c"),
    ({"ordinal": {"DataType": "Number", "StringValue": "1"},
      "category": {"DataType": "String", "StringValue": "test"}},
     "d21ae90c49061e927f57df5f5d72be1f"),
    ({"SellerName": {"DataType": "String", "StringValue": "Example Store"}},
     "cd28f3b68aeee4b2eac9c66f2f694b58"),
]


@pytest.mark.parametrize("attributes,expected", REFERENCE_VECTORS)
def test_md5_of_message_attributes_matches_reference_values(attributes, expected):
    assert md5_of_message_attributes(attributes) == expected


def test_md5_of_body_matches_the_api_reference_sample():
    # ReceiveMessage sample response in the API Reference.
    assert md5_hex("This is a test message") == "fafb00f5732ab283681e124bf8747ed1"


class _Body:
    def __init__(self, data: bytes):
        self._data = data

    def stream(self, **_kwargs):
        yield self._data


@pytest.fixture
def offline_query_client(query_model_dir):
    """A query client whose requests never leave the process: ``calls`` records each request
    and ``reply`` sets the canned (status, body) answer (None: an empty result)."""
    client = make_client("http://127.0.0.1:9", "query", query_model_dir)
    state = {"reply": None, "calls": []}

    def fake_send(request, **_kwargs):
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        form = dict(urllib.parse.parse_qsl(body, keep_blank_values=True))
        state["calls"].append(form)
        if state["reply"] is None:
            action = form["Action"]
            payload = f"<{action}Response><{action}Result/></{action}Response>".encode()
            return AWSResponse(request.url, 200, {}, _Body(payload))
        status, payload = state["reply"]
        return AWSResponse(request.url, status, {}, _Body(payload))

    client.meta.events.register("before-send.sqs.*", fake_send)
    client.state = state
    return client


def test_query_send_message_uses_documented_parameter_names(offline_query_client):
    c = offline_query_client
    c.state["reply"] = (200, b"<SendMessageResponse><SendMessageResult><MessageId>m</MessageId>"
                             b"</SendMessageResult></SendMessageResponse>")
    c.send_message(
        QueueUrl="http://h/000000000000/q",
        MessageBody="hi",
        DelaySeconds=3,
        MessageAttributes={"a": {"DataType": "String", "StringValue": "v"},
                           "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}},
        MessageSystemAttributes={"AWSTraceHeader": {"DataType": "String", "StringValue": "Root=1"}},
    )
    form = c.state["calls"][-1]
    assert form == {
        "Action": "SendMessage",
        "Version": "2012-11-05",
        "QueueUrl": "http://h/000000000000/q",
        "MessageBody": "hi",
        "DelaySeconds": "3",
        "MessageAttribute.1.Name": "a",
        "MessageAttribute.1.Value.DataType": "String",
        "MessageAttribute.1.Value.StringValue": "v",
        "MessageAttribute.2.Name": "b",
        "MessageAttribute.2.Value.DataType": "Binary",
        "MessageAttribute.2.Value.BinaryValue": "AAE=",
        "MessageSystemAttribute.1.Name": "AWSTraceHeader",
        "MessageSystemAttribute.1.Value.DataType": "String",
        "MessageSystemAttribute.1.Value.StringValue": "Root=1",
    }


def test_query_batch_and_queue_calls_use_documented_parameter_names(offline_query_client):
    c = offline_query_client
    url = "http://h/000000000000/q"
    c.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "e1", "MessageBody": "b1", "DelaySeconds": 1,
         "MessageAttributes": {"k": {"DataType": "Number", "StringValue": "1"}}},
        {"Id": "e2", "MessageBody": "b2", "MessageGroupId": "g", "MessageDeduplicationId": "d"},
    ])
    assert c.state["calls"][-1] == {
        "Action": "SendMessageBatch", "Version": "2012-11-05", "QueueUrl": url,
        "SendMessageBatchRequestEntry.1.Id": "e1",
        "SendMessageBatchRequestEntry.1.MessageBody": "b1",
        "SendMessageBatchRequestEntry.1.DelaySeconds": "1",
        "SendMessageBatchRequestEntry.1.MessageAttribute.1.Name": "k",
        "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType": "Number",
        "SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue": "1",
        "SendMessageBatchRequestEntry.2.Id": "e2",
        "SendMessageBatchRequestEntry.2.MessageBody": "b2",
        "SendMessageBatchRequestEntry.2.MessageGroupId": "g",
        "SendMessageBatchRequestEntry.2.MessageDeduplicationId": "d",
    }
    c.create_queue(QueueName="q", Attributes={"DelaySeconds": "45"}, tags={"team": "x"})
    assert c.state["calls"][-1] == {
        "Action": "CreateQueue", "Version": "2012-11-05", "QueueName": "q",
        "Attribute.1.Name": "DelaySeconds", "Attribute.1.Value": "45",
        "Tag.1.Key": "team", "Tag.1.Value": "x",
    }
    c.receive_message(QueueUrl=url, AttributeNames=["All"], MessageSystemAttributeNames=["SenderId"],
                      MessageAttributeNames=["foo.*"], MaxNumberOfMessages=5)
    assert c.state["calls"][-1] == {
        "Action": "ReceiveMessage", "Version": "2012-11-05", "QueueUrl": url,
        "AttributeName.1": "All", "MessageSystemAttributeName.1": "SenderId",
        "MessageAttributeName.1": "foo.*", "MaxNumberOfMessages": "5",
    }
    c.delete_message_batch(QueueUrl=url, Entries=[{"Id": "d1", "ReceiptHandle": "r1"}])
    assert c.state["calls"][-1]["DeleteMessageBatchRequestEntry.1.ReceiptHandle"] == "r1"
    c.change_message_visibility_batch(
        QueueUrl=url, Entries=[{"Id": "c1", "ReceiptHandle": "r1", "VisibilityTimeout": 7}])
    assert c.state["calls"][-1]["ChangeMessageVisibilityBatchRequestEntry.1.VisibilityTimeout"] == "7"
    c.add_permission(QueueUrl=url, Label="l", AWSAccountIds=["111122223333"],
                     Actions=["SendMessage"])
    assert c.state["calls"][-1]["AWSAccountId.1"] == "111122223333"
    assert c.state["calls"][-1]["ActionName.1"] == "SendMessage"
    c.tag_queue(QueueUrl=url, Tags={"QueueType": "Production"})
    assert c.state["calls"][-1] == {
        "Action": "TagQueue", "Version": "2012-11-05", "QueueUrl": url,
        "Tag.1.Key": "QueueType", "Tag.1.Value": "Production",
    }
    c.untag_queue(QueueUrl=url, TagKeys=["team"])
    assert c.state["calls"][-1]["TagKey.1"] == "team"
    c.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "35"})
    assert c.state["calls"][-1]["Attribute.1.Name"] == "VisibilityTimeout"
    assert c.state["calls"][-1]["Attribute.1.Value"] == "35"
    c.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])
    assert c.state["calls"][-1]["AttributeName.1"] == "All"


def test_query_client_parses_documented_responses(offline_query_client):
    c = offline_query_client
    c.state["reply"] = (200, b"""<ReceiveMessageResponse>
  <ReceiveMessageResult>
    <Message>
      <MessageId>5fea7756-0ea4-451a-a703-a558b933e274</MessageId>
      <ReceiptHandle>MbZj6wDWli+JvwwJaBV+3dcjk2YW2vA3+STFFljTM8tJJg6HRG6PYSasuWXPJB+Cw</ReceiptHandle>
      <MD5OfBody>fafb00f5732ab283681e124bf8747ed1</MD5OfBody>
      <Body>This is a test message</Body>
      <Attribute><Name>SenderId</Name><Value>195004372649</Value></Attribute>
      <Attribute><Name>ApproximateReceiveCount</Name><Value>5</Value></Attribute>
      <MessageAttribute><Name>a</Name><Value><StringValue>v</StringValue><DataType>String</DataType></Value></MessageAttribute>
    </Message>
  </ReceiveMessageResult>
  <ResponseMetadata><RequestId>b6633655-283d-45b4-aee4-4e84e0ae6afa</RequestId></ResponseMetadata>
</ReceiveMessageResponse>""")
    resp = c.receive_message(QueueUrl="http://h/000000000000/q")
    [msg] = resp["Messages"]
    assert msg["Body"] == "This is a test message"
    assert msg["Attributes"] == {"SenderId": "195004372649", "ApproximateReceiveCount": "5"}
    assert msg["MessageAttributes"] == {"a": {"StringValue": "v", "DataType": "String"}}
    assert resp["ResponseMetadata"]["RequestId"] == "b6633655-283d-45b4-aee4-4e84e0ae6afa"

    c.state["reply"] = (400, b"""<ErrorResponse><Error><Type>Sender</Type>
  <Code>AWS.SimpleQueueService.NonExistentQueue</Code>
  <Message>The specified queue does not exist.</Message><Detail/></Error>
  <RequestId>42d59b56-7407-4c4a-be0f-4c88daeea257</RequestId></ErrorResponse>""")
    with pytest.raises(c.exceptions.QueueDoesNotExist) as err:
        c.get_queue_url(QueueName="nope")
    assert err.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
