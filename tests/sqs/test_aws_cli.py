"""The aws CLI (awscli from the test virtual environment) against Baton: the basic flow, and
receipt handles passed as command-line arguments."""

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import md5_hex, receive_until, send_bodies, unique_name


def _aws_executable() -> str:
    beside_python = Path(sys.executable).parent / "aws"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("aws")
    if not found:
        pytest.fail("the aws CLI is not installed (tests/sqs/requirements.txt installs awscli)")
    return found


@pytest.fixture
def aws(baton_endpoint, tmp_path):
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "AKIDBATONTEST",
        "AWS_SECRET_ACCESS_KEY": "baton-test-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_PAGER": "",
    }
    env.pop("AWS_PROFILE", None)
    executable = _aws_executable()

    def run(*args, check=True):
        cmd = [executable, "--endpoint-url", baton_endpoint, "--region", "us-east-1",
               "--output", "json", "sqs", *args]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
        if check:
            assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}): {proc.stderr}"
            return json.loads(proc.stdout) if proc.stdout.strip() else {}
        return proc

    return run


def test_aws_cli_basic_flow(aws, baton_endpoint):
    name = unique_name("cli")
    url = aws("create-queue", "--queue-name", name,
              "--attributes", "VisibilityTimeout=45")["QueueUrl"]
    assert url == f"{baton_endpoint}/000000000000/{name}"
    assert aws("get-queue-url", "--queue-name", name)["QueueUrl"] == url

    sent = aws("send-message", "--queue-url", url, "--message-body", "hello from the cli",
               "--message-attributes",
               json.dumps({"kind": {"DataType": "String", "StringValue": "greeting"}}))
    assert sent["MD5OfMessageBody"] == md5_hex("hello from the cli")
    assert sent["MessageId"]

    attrs = aws("get-queue-attributes", "--queue-url", url, "--attribute-names", "All")["Attributes"]
    assert attrs["VisibilityTimeout"] == "45"
    assert attrs["ApproximateNumberOfMessages"] == "1"

    got = aws("receive-message", "--queue-url", url, "--wait-time-seconds", "1",
              "--message-attribute-names", "All", "--attribute-names", "All")
    [msg] = got["Messages"]
    assert msg["MessageId"] == sent["MessageId"]
    assert msg["Body"] == "hello from the cli"
    assert msg["MessageAttributes"]["kind"]["StringValue"] == "greeting"
    assert msg["Attributes"]["ApproximateReceiveCount"] == "1"

    aws("delete-message", "--queue-url", url, "--receipt-handle", msg["ReceiptHandle"])
    attrs = aws("get-queue-attributes", "--queue-url", url, "--attribute-names",
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}

    assert url in aws("list-queues", "--queue-name-prefix", name)["QueueUrls"]
    aws("delete-queue", "--queue-url", url)
    missing = aws("get-queue-url", "--queue-name", name, check=False)
    assert missing.returncode != 0
    assert "NonExistentQueue" in missing.stderr or "QueueDoesNotExist" in missing.stderr


def test_aws_cli_send_message_batch_and_purge(aws):
    url = aws("create-queue", "--queue-name", unique_name("cli"))["QueueUrl"]
    entries = [{"Id": f"e{i}", "MessageBody": f"batch {i}"} for i in range(3)]
    resp = aws("send-message-batch", "--queue-url", url, "--entries", json.dumps(entries))
    assert sorted(r["Id"] for r in resp["Successful"]) == ["e0", "e1", "e2"]
    aws("purge-queue", "--queue-url", url)
    attrs = aws("get-queue-attributes", "--queue-url", url,
                "--attribute-names", "ApproximateNumberOfMessages")["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0"}


def test_aws_cli_deletes_by_every_receipt_handle_passed_as_an_argument(aws, sqs_json):
    # `--receipt-handle <h>` takes a handle that starts with "-" for an option, so such a
    # handle could not be deleted from a shell. 64 receives (a random first character would
    # start with "-" once in 64; test_receipt_handles checks the form of 500); boto3 receives
    # with a long lease, the CLI deletes each one.
    url = sqs_json.create_queue(QueueName=unique_name("cli"))["QueueUrl"]
    dash = aws("delete-message", "--queue-url", url, "--receipt-handle", "-u4vAAAA", check=False)
    assert dash.returncode != 0 and "expected one argument" in dash.stderr, dash.stderr
    send_bodies(sqs_json, url, [f"m{i}" for i in range(64)])
    handles = [m["ReceiptHandle"] for m in receive_until(sqs_json, url, 64, VisibilityTimeout=600)]
    assert len(handles) == 64

    def delete(handle):
        return aws("delete-message", "--queue-url", url, "--receipt-handle", handle, check=False)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(delete, handles))
    failures = [(h, r.stderr) for h, r in zip(handles, results) if r.returncode != 0]
    assert failures == []
    attrs = sqs_json.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
