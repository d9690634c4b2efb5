"""AWS Signature Version 4 on a Baton server with API keys: boto3 (both protocols) and the aws
CLI signing with the SQS credentials of keys the suite creates over the native API.

AWS documents the codes checked here in the SQS API Reference ("Common Errors"): a request
without a signature is MissingAuthenticationToken (403), an unknown access key id
InvalidClientTokenId (403), a wrong secret SignatureDoesNotMatch (403); a valid signature
whose key lacks the permission is AccessDenied (403).
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.request

import pytest
from botocore.exceptions import ClientError

from conftest import (
    expect_error,
    make_client,
    raw_json_call,
    raw_query_call,
    receive,
    serve_baton,
    unique_name,
)
from test_aws_cli import _aws_executable

ADMIN_KEY = "sigv4-suite-admin-key-0123456789abcdef"


@pytest.fixture(scope="module")
def secured():
    """A server whose only key at start is the admin key of BATON_ADMIN_KEY."""
    with serve_baton({"BATON_ADMIN_KEY": ADMIN_KEY}) as endpoint:
        yield endpoint


def create_key(endpoint: str, permissions: list, name: str | None = None) -> dict:
    """POST /v1/keys with ``sqs: true``; returns the answer (with the SQS secret)."""
    body = {"name": name or unique_name("k"), "permissions": permissions, "sqs": True}
    request = urllib.request.Request(
        endpoint + "/v1/keys",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 201
        created = json.loads(resp.read())
    assert created["access_key_id"].startswith("BKIA") and len(created["access_key_id"]) == 20
    assert len(created["secret_access_key"]) == 40
    return created


def client_for(endpoint, protocol, query_model_dir, key: dict, secret: str | None = None):
    credentials = (key["access_key_id"], secret or key["secret_access_key"])
    # Any region signs: Baton accepts every region name.
    return make_client(endpoint, protocol, query_model_dir, credentials, region="eu-west-1")


@pytest.fixture(scope="module")
def worker_key(secured):
    return create_key(secured, [{"actions": ["send", "receive", "manage"],
                                 "resources": ["queue:sig-*"]}])


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_a_key_that_may_sends_receives_and_deletes(secured, query_model_dir, worker_key,
                                                   protocol):
    sqs = client_for(secured, protocol, query_model_dir, worker_key)
    url = sqs.create_queue(QueueName=unique_name("sig"))["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="signed hello")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "a", "MessageBody": "batched"}])
    got = []
    for _ in range(5):
        got += receive(sqs, url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        if len(got) == 2:
            break
    assert sorted(m["Body"] for m in got) == ["batched", "signed hello"]
    for message in got:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
    assert url in sqs.list_queues().get("QueueUrls", [])


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_a_key_that_may_not_is_access_denied(secured, query_model_dir, worker_key, protocol):
    owner = client_for(secured, protocol, query_model_dir, worker_key)
    url = owner.create_queue(QueueName=unique_name("sig"))["QueueUrl"]
    reader = create_key(secured, [{"actions": ["receive"], "resources": ["queue:sig-*"]}])
    sqs = client_for(secured, protocol, query_model_dir, reader)
    with expect_error(sqs, "AccessDenied", 403) as err:
        sqs.send_message(QueueUrl=url, MessageBody="not allowed")
    assert "sqs:SendMessage" in err.message
    with expect_error(sqs, "AccessDenied", 403):
        sqs.purge_queue(QueueUrl=url)
    with expect_error(sqs, "AccessDenied", 403):
        sqs.create_queue(QueueName=unique_name("other"))
    assert receive(sqs, url) == []  # receive is allowed, and nothing was sent
    # A key on other queues does not see these in ListQueues.
    other = create_key(secured, [{"actions": ["send"], "resources": ["queue:elsewhere-*"]}])
    listed = client_for(secured, protocol, query_model_dir, other).list_queues()
    assert listed.get("QueueUrls", []) == []


@pytest.mark.parametrize("protocol", ["json", "query"])
def test_wrong_secret_and_unknown_key(secured, query_model_dir, worker_key, protocol):
    wrong = client_for(secured, protocol, query_model_dir, worker_key, secret="w" * 40)
    with expect_error(wrong, "SignatureDoesNotMatch", 403):
        wrong.list_queues()
    unknown = make_client(secured, protocol, query_model_dir,
                          ("BKIAUNKNOWNKEY000000", "u" * 40))
    with expect_error(unknown, "InvalidClientTokenId", 403) as err:
        unknown.list_queues()
    assert err.message == "The security token included in the request is invalid."


def test_unsigned_requests_are_refused(secured):
    resp = raw_json_call(secured, "ListQueues", {})
    assert resp.status == 403, resp
    assert resp.headers["x-amzn-query-error"] == "MissingAuthenticationToken;Sender"
    resp = raw_query_call(secured, {"Action": "ListQueues"})
    assert resp.status == 403, resp
    assert b"<Code>MissingAuthenticationToken</Code>" in resp.body


def test_a_presigned_url_from_botocore(secured, query_model_dir, worker_key):
    sqs = client_for(secured, "query", query_model_dir, worker_key)
    name = unique_name("sig")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    presigned = sqs.generate_presigned_url("get_queue_url", Params={"QueueName": name},
                                           ExpiresIn=60)
    assert "X-Amz-Signature=" in presigned
    # botocore signs the operation's method (POST), with the parameters in the query.
    request = urllib.request.Request(presigned, data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
        assert url.encode() in resp.read()
    tampered = presigned.replace(name, unique_name("sig"))
    request = urllib.request.Request(tampered, data=b"", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 403
    assert b"<Code>SignatureDoesNotMatch</Code>" in err.value.read()


def _aws(endpoint, key_id, secret, tmp_path, *args):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_DEFAULT_REGION": "ap-northeast-2",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_PAGER": "",
    }
    env.pop("AWS_PROFILE", None)
    cmd = [_aws_executable(), "--endpoint-url", endpoint, "--output", "json", "sqs", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_the_aws_cli_with_a_keys_credentials(secured, worker_key, tmp_path):
    key_id, secret = worker_key["access_key_id"], worker_key["secret_access_key"]
    proc = _aws(secured, key_id, secret, tmp_path, "create-queue", "--queue-name",
                unique_name("sig"))
    assert proc.returncode == 0, proc.stderr
    url = json.loads(proc.stdout)["QueueUrl"]
    proc = _aws(secured, key_id, secret, tmp_path, "send-message", "--queue-url", url,
                "--message-body", "from the cli")
    assert proc.returncode == 0, proc.stderr
    proc = _aws(secured, key_id, secret, tmp_path, "receive-message", "--queue-url", url)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["Messages"][0]["Body"] == "from the cli"
    proc = _aws(secured, key_id, "x" * 40, tmp_path, "list-queues")
    assert proc.returncode != 0
    assert "SignatureDoesNotMatch" in proc.stderr, proc.stderr


def test_revoking_a_key_revokes_its_sqs_credentials(secured, query_model_dir):
    key = create_key(secured, [{"actions": ["send"], "resources": ["queue:sig-*"]}])
    sqs = client_for(secured, "json", query_model_dir, key)
    sqs.list_queues()
    request = urllib.request.Request(
        f"{secured}/v1/keys/{key['name']}",
        headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        method="DELETE",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 204
    with pytest.raises(ClientError) as err:
        sqs.list_queues()
    assert err.value.response["Error"]["Code"] == "InvalidClientTokenId"
