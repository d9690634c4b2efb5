"""Fixtures and helpers for the end-to-end tests of Baton's Amazon SQS-compatible API.

The tests are written from the AWS documentation (SQS API Reference and Developer Guide), not
from Baton's behaviour: a test that fails names a difference from Amazon SQS.

* ``baton_endpoint`` (session): starts ``baton serve --listen 127.0.0.1:0`` on a temporary data
  dir, reads the one ``baton listening on http://...`` line, waits for ``GET /ready`` == 200,
  yields the endpoint URL and stops the server at the end (``serve_baton``, which
  ``test_sigv4.py`` uses for a server with API keys). This server has no keys, so request
  signatures are not checked.
* ``sqs_json``: a boto3 client speaking the AWS JSON 1.0 protocol (botocore's default for SQS).
* ``sqs_query``: a boto3 client speaking the query protocol (form-encoded ``Action=...``, XML
  answers). botocore no longer ships a query model for SQS, so the installed JSON model is
  turned into the query model the AWS SDKs used until 2023 (see ``query_service_model``).
* ``sqs``: parametrized over both, so most tests run once per protocol.

Helpers used by the test modules (``from conftest import ...``): MD5 digests as AWS specifies
them, ``expect_error`` for error codes and HTTP statuses per protocol, unique queue names,
raw HTTP requests.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import http.client
import json
import os
import select
import signal
import struct
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

REPO_ROOT = Path(__file__).resolve().parents[2]
ACCOUNT_ID = "000000000000"
REGION = "us-east-1"
QUERY_API_VERSION = "2012-11-05"
QUERY_NAMESPACE = "http://queue.amazonaws.com/doc/2012-11-05/"
SERVER_START_TIMEOUT_S = 30.0


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


def _baton_binary() -> Path:
    override = os.environ.get("BATON_BIN")
    return Path(override) if override else REPO_ROOT / "target" / "debug" / "baton"


def _read_listening_line(proc: subprocess.Popen, deadline: float) -> str:
    """Reads stdout up to the first newline without blocking past the deadline."""
    buf = b""
    fd = proc.stdout.fileno()
    while b"\n" not in buf:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no listening line within {SERVER_START_TIMEOUT_S}s: {buf!r}")
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise RuntimeError(f"baton exited before listening (stdout so far: {buf!r})")
        buf += chunk
    return buf.split(b"\n", 1)[0].decode()


def _wait_ready(endpoint: str, deadline: float) -> None:
    last = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(endpoint + "/ready", timeout=2) as resp:
                if resp.status == 200:
                    return
                last = resp.status
        except urllib.error.HTTPError as err:  # 503 while recovering
            last = err.code
        except OSError as err:
            last = err
        time.sleep(0.05)
    raise TimeoutError(f"GET /ready did not answer 200 in time (last: {last})")


@contextlib.contextmanager
def serve_baton(env: dict | None = None):
    """Runs ``baton serve`` on a fresh data dir (with ``env`` added to its environment) and
    yields its endpoint URL once ``/ready`` answers 200."""
    binary = _baton_binary()
    if not binary.is_file():
        pytest.exit(
            f"baton binary not found at {binary}: run `cargo build -p baton-cli` or set BATON_BIN",
            returncode=2,
        )
    with tempfile.TemporaryDirectory(prefix="baton-sqs-e2e-") as tmp:
        data_dir = Path(tmp) / "data"
        log_path = Path(tmp) / "baton.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [str(binary), "serve", "--listen", "127.0.0.1:0", "--data-dir", str(data_dir)],
                stdout=subprocess.PIPE,
                stderr=log,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
            )
            try:
                deadline = time.monotonic() + SERVER_START_TIMEOUT_S
                line = _read_listening_line(proc, deadline)
                prefix = "baton listening on "
                assert line.startswith(prefix), f"unexpected first stdout line: {line!r}"
                endpoint = line[len(prefix):].strip().rstrip("/")
                _wait_ready(endpoint, deadline)
                yield endpoint
            except BaseException:
                tail = log_path.read_bytes()[-4000:].decode(errors="replace")
                print(f"--- baton stderr (tail) ---\n{tail}")
                raise
            finally:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                proc.stdout.close()


@pytest.fixture(scope="session")
def baton_endpoint():
    with serve_baton() as endpoint:
        yield endpoint


# --------------------------------------------------------------------------------------------
# boto3 clients for both protocols
# --------------------------------------------------------------------------------------------

# The query protocol names list members and map entries on the wire differently from the JSON
# member names (e.g. ``MessageAttribute.1.Name`` for ``MessageAttributes``). These are the
# names of the query-era model (botocore <= 1.31.62, the last one with ``protocol: query``),
# plus ``MessageSystemAttributeName.N`` for ``MessageSystemAttributeNames``, added to
# ReceiveMessage after SQS moved to JSON.
_QUERY_LIST_MEMBER_NAMES = {
    "AWSAccountIdList": "AWSAccountId",
    "ActionNameList": "ActionName",
    "AttributeNameList": "AttributeName",
    "BatchResultErrorEntryList": "BatchResultErrorEntry",
    "BinaryList": "BinaryListValue",
    "ChangeMessageVisibilityBatchRequestEntryList": "ChangeMessageVisibilityBatchRequestEntry",
    "ChangeMessageVisibilityBatchResultEntryList": "ChangeMessageVisibilityBatchResultEntry",
    "DeleteMessageBatchRequestEntryList": "DeleteMessageBatchRequestEntry",
    "DeleteMessageBatchResultEntryList": "DeleteMessageBatchResultEntry",
    "ListMessageMoveTasksResultEntryList": "ListMessageMoveTasksResultEntry",
    "MessageAttributeNameList": "MessageAttributeName",
    "MessageList": "Message",
    "MessageSystemAttributeList": "MessageSystemAttributeName",
    "QueueUrlList": "QueueUrl",
    "SendMessageBatchRequestEntryList": "SendMessageBatchRequestEntry",
    "SendMessageBatchResultEntryList": "SendMessageBatchResultEntry",
    "StringList": "StringListValue",
    "TagKeyList": "TagKey",
}
_QUERY_MAP_ENTRY_NAMES = {
    "MessageBodyAttributeMap": ("Name", "Value"),
    "MessageBodySystemAttributeMap": ("Name", "Value"),
    "MessageSystemAttributeMap": ("Name", "Value"),
    "QueueAttributeMap": ("Name", "Value"),
    "TagMap": ("Key", "Value"),
}
# Maps whose wire name is set on the shape itself: it applies wherever no member overrides it
# (e.g. TagQueue's ``Tags`` is sent as ``Tag.N.Key``/``Tag.N.Value``).
_QUERY_SHAPE_NAMES = {
    "MessageSystemAttributeMap": "Attribute",
    "QueueAttributeMap": "Attribute",
    "TagMap": "Tag",
}
_QUERY_MEMBER_NAMES = {
    ("CreateQueueRequest", "Attributes"): "Attribute",
    ("CreateQueueRequest", "tags"): "Tag",
    ("GetQueueAttributesResult", "Attributes"): "Attribute",
    ("ListQueueTagsResult", "Tags"): "Tag",
    ("Message", "Attributes"): "Attribute",
    ("Message", "MessageAttributes"): "MessageAttribute",
    ("MessageAttributeValue", "BinaryListValues"): "BinaryListValue",
    ("MessageAttributeValue", "StringListValues"): "StringListValue",
    ("MessageSystemAttributeValue", "BinaryListValues"): "BinaryListValue",
    ("MessageSystemAttributeValue", "StringListValues"): "StringListValue",
    ("SendMessageBatchRequestEntry", "MessageAttributes"): "MessageAttribute",
    ("SendMessageBatchRequestEntry", "MessageSystemAttributes"): "MessageSystemAttribute",
    ("SendMessageRequest", "MessageAttributes"): "MessageAttribute",
    ("SendMessageRequest", "MessageSystemAttributes"): "MessageSystemAttribute",
    ("SetQueueAttributesRequest", "Attributes"): "Attribute",
}

# Error shape -> (code in the query protocol's XML <Code>, which is also the first part of the
# JSON protocol's x-amzn-query-error header, HTTP status). Codes from the query-era model and
# the SQS API Reference; statuses from the current API Reference ("Errors" of each action),
# which lists 400 for every SQS error, PurgeQueueInProgress and ResourceNotFoundException
# included (the query-era reference had 403 and 404 for those two).
SQS_ERRORS = {
    "BatchEntryIdsNotDistinct": ("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400),
    "BatchRequestTooLong": ("AWS.SimpleQueueService.BatchRequestTooLong", 400),
    "EmptyBatchRequest": ("AWS.SimpleQueueService.EmptyBatchRequest", 400),
    "InvalidAttributeName": ("InvalidAttributeName", 400),
    "InvalidAttributeValue": ("InvalidAttributeValue", 400),
    "InvalidBatchEntryId": ("AWS.SimpleQueueService.InvalidBatchEntryId", 400),
    "InvalidMessageContents": ("InvalidMessageContents", 400),
    "MessageNotInflight": ("AWS.SimpleQueueService.MessageNotInflight", 400),
    "PurgeQueueInProgress": ("AWS.SimpleQueueService.PurgeQueueInProgress", 400),
    "QueueDoesNotExist": ("AWS.SimpleQueueService.NonExistentQueue", 400),
    "QueueNameExists": ("QueueAlreadyExists", 400),
    "ReceiptHandleIsInvalid": ("ReceiptHandleIsInvalid", 400),
    "ResourceNotFoundException": ("ResourceNotFoundException", 400),
    "TooManyEntriesInBatchRequest": ("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400),
    "UnsupportedOperation": ("AWS.SimpleQueueService.UnsupportedOperation", 400),
}
# Errors common to all actions (API Reference, "Common Errors"): not modeled as shapes.
COMMON_ERRORS = {
    "InvalidAction": 400,
    "InvalidParameterValue": 400,
    "MissingParameter": 400,
}


def query_service_model(json_model: dict) -> dict:
    """The SQS service model for the query protocol, derived from botocore's JSON model."""
    model = copy.deepcopy(json_model)
    meta = model["metadata"]
    for key in ("jsonVersion", "targetPrefix", "awsQueryCompatible"):
        meta.pop(key, None)
    meta["protocol"] = "query"
    meta["protocols"] = ["query"]
    meta["xmlNamespace"] = QUERY_NAMESPACE
    for name, op in model["operations"].items():
        if "output" in op:
            op["output"]["resultWrapper"] = f"{name}Result"
    shapes = model["shapes"]
    for shape_name, member_name in _QUERY_LIST_MEMBER_NAMES.items():
        shapes[shape_name]["member"]["locationName"] = member_name
    for shape_name, (key_name, value_name) in _QUERY_MAP_ENTRY_NAMES.items():
        shapes[shape_name]["key"]["locationName"] = key_name
        shapes[shape_name]["value"]["locationName"] = value_name
    for shape_name, wire_name in _QUERY_SHAPE_NAMES.items():
        shapes[shape_name]["locationName"] = wire_name
    for (shape_name, member), wire_name in _QUERY_MEMBER_NAMES.items():
        shapes[shape_name]["members"][member]["locationName"] = wire_name
    for shape_name, (code, status) in SQS_ERRORS.items():
        shapes[shape_name]["error"] = {"code": code, "httpStatusCode": status, "senderFault": True}
    # Fail loudly if a newer botocore adds a flattened collection this table does not name:
    # the query serializer would then put a wrong name on the wire.
    for shape_name, shape in shapes.items():
        if shape.get("type") == "list" and shape.get("flattened"):
            assert "locationName" in shape["member"], f"query name missing for {shape_name}"
        if shape.get("type") == "map" and shape.get("flattened"):
            assert "locationName" in shape["key"], f"query name missing for {shape_name}"
    return model


@pytest.fixture(scope="session")
def query_model_dir(tmp_path_factory) -> Path:
    json_model = botocore.loaders.Loader().load_service_model("sqs", "service-2")
    root = tmp_path_factory.mktemp("botocore-models")
    version_dir = root / "sqs" / json_model["metadata"]["apiVersion"]
    version_dir.mkdir(parents=True)
    (version_dir / "service-2.json").write_text(json.dumps(query_service_model(json_model)))
    return root


CLIENT_CONFIG = Config(
    region_name=REGION,
    retries={"max_attempts": 1, "mode": "standard"},  # no retries: every call is one request
    connect_timeout=5,
    read_timeout=40,  # long polls wait up to 20 s
    parameter_validation=False,  # out-of-range values must reach the server
    max_pool_connections=20,
)


def make_client(endpoint: str, protocol: str, query_model_dir: Path | None = None,
                credentials: tuple[str, str] = ("AKIDBATONTEST", "baton-test-secret"),
                region: str = REGION):
    """A boto3 SQS client; ``credentials`` (access key id, secret) sign its requests, which
    a server without keys does not check."""
    core = botocore.session.get_session()
    if protocol == "query":
        assert query_model_dir is not None
        core.get_component("data_loader").search_paths.insert(0, str(query_model_dir))
    session = boto3.session.Session(
        botocore_session=core,
        aws_access_key_id=credentials[0],
        aws_secret_access_key=credentials[1],
        region_name=region,
    )
    client = session.client("sqs", endpoint_url=endpoint, config=CLIENT_CONFIG)
    assert client.meta.service_model.resolved_protocol == protocol
    return client


@pytest.fixture(scope="session")
def sqs_json(baton_endpoint):
    return make_client(baton_endpoint, "json")


@pytest.fixture(scope="session")
def sqs_query(baton_endpoint, query_model_dir):
    return make_client(baton_endpoint, "query", query_model_dir)


@pytest.fixture(params=["json", "query"])
def sqs(request):
    """The SQS client for one protocol; tests using it run once per protocol."""
    return request.getfixturevalue(f"sqs_{request.param}")


@pytest.fixture
def client_factory(baton_endpoint, query_model_dir):
    """Makes a fresh client for a protocol (for threads, which must not share one)."""
    return lambda protocol: make_client(baton_endpoint, protocol, query_model_dir)


def protocol_of(client) -> str:
    return client.meta.service_model.resolved_protocol


# --------------------------------------------------------------------------------------------
# Queues
# --------------------------------------------------------------------------------------------


def unique_name(prefix: str = "q", fifo: bool = False) -> str:
    """A queue name no other test uses (at most 80 characters, [A-Za-z0-9_-])."""
    name = f"{prefix}-{uuid.uuid4().hex[:16]}"
    return name + ".fifo" if fifo else name


def queue_url_for(endpoint: str, name: str) -> str:
    return f"{endpoint}/{ACCOUNT_ID}/{name}"


def queue_arn_for(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"


@pytest.fixture
def new_queue(sqs):
    """Creates a queue with a unique name: ``new_queue(attributes=None, fifo=False, prefix=...)``
    returns its URL."""

    def create(attributes: dict | None = None, fifo: bool = False, prefix: str = "q", **kwargs):
        attrs = dict(attributes or {})
        if fifo:
            attrs.setdefault("FifoQueue", "true")
        params = {"QueueName": unique_name(prefix, fifo)}
        if attrs:
            params["Attributes"] = {k: str(v) for k, v in attrs.items()}
        params.update(kwargs)
        return sqs.create_queue(**params)["QueueUrl"]

    return create


def queue_attributes(client, url: str, *names: str) -> dict:
    resp = client.get_queue_attributes(QueueUrl=url, AttributeNames=list(names) or ["All"])
    return resp.get("Attributes", {})


def receive(client, url: str, **kwargs) -> list:
    """ReceiveMessage, returning the list of messages (empty when there is none)."""
    kwargs.setdefault("WaitTimeSeconds", 0)
    return client.receive_message(QueueUrl=url, **kwargs).get("Messages", [])


def receive_until(client, url: str, count: int, timeout: float = 10.0, **kwargs) -> list:
    """Receives (long polls of 1 s) until ``count`` messages arrived or the timeout passes."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        got += receive(
            client,
            url,
            MaxNumberOfMessages=min(10, count - len(got)),
            WaitTimeSeconds=1,
            **kwargs,
        )
    return got


def send_bodies(client, url: str, bodies, **entry_fields) -> list:
    """Sends bodies in batches of 10; returns the MessageIds in order."""
    ids = []
    bodies = list(bodies)
    for start in range(0, len(bodies), 10):
        chunk = bodies[start:start + 10]
        entries = [
            {"Id": f"m{i}", "MessageBody": body, **entry_fields} for i, body in enumerate(chunk)
        ]
        resp = client.send_message_batch(QueueUrl=url, Entries=entries)
        assert not resp.get("Failed"), resp.get("Failed")
        by_id = {e["Id"]: e["MessageId"] for e in resp["Successful"]}
        ids += [by_id[f"m{i}"] for i in range(len(chunk))]
    return ids


def wait_for(predicate, timeout: float = 10.0, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------------
# MD5 digests (Developer Guide: "Calculating the MD5 message digest for message attributes")
# --------------------------------------------------------------------------------------------


def md5_hex(data: str | bytes) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.md5(data).hexdigest()


def _length_prefixed(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def md5_of_message_attributes(attributes: dict) -> str:
    """MD5OfMessageAttributes (and MD5OfMessageSystemAttributes) as AWS specifies it.

    Attributes sorted by name; for each: 4-byte big-endian length + UTF-8 name, length + UTF-8
    data type (custom suffixes included), one transport byte (1 for String and Number, 2 for
    Binary), then length + value (UTF-8 for String/Number, raw bytes for Binary).
    """
    buf = bytearray()
    for name in sorted(attributes):
        attr = attributes[name]
        data_type = attr["DataType"]
        buf += _length_prefixed(name.encode("utf-8"))
        buf += _length_prefixed(data_type.encode("utf-8"))
        if data_type.split(".", 1)[0] == "Binary":
            value = attr["BinaryValue"]
            if isinstance(value, str):
                value = value.encode("utf-8")
            buf += b"\x02" + _length_prefixed(bytes(value))
        else:
            buf += b"\x01" + _length_prefixed(attr["StringValue"].encode("utf-8"))
    return hashlib.md5(bytes(buf)).hexdigest()


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ErrorInfo:
    """What ``expect_error`` caught: ``.response`` is botocore's parsed error response."""

    response: dict = {}

    @property
    def code(self) -> str:
        return self.response["Error"]["Code"]

    @property
    def message(self) -> str:
        return self.response["Error"].get("Message", "")


@contextlib.contextmanager
def expect_error(client, error: str, status: int | None = None):
    """Asserts that the block raises the SQS error ``error`` as the API Reference lists it.

    ``error`` is a modeled error shape (``QueueDoesNotExist``...) or a common error
    (``InvalidParameterValue``...). Per protocol:

    * query: the XML ``<Code>`` (botocore's ``Error.Code``) is the query code, e.g.
      ``AWS.SimpleQueueService.NonExistentQueue`` for ``QueueDoesNotExist``, and ``<Type>`` is
      ``Sender``.
    * JSON: the ``x-amzn-query-error`` header is ``<query code>;Sender`` (botocore then reports
      the query code as ``Error.Code``, as for the query protocol); for modeled errors the
      body's ``__type`` names the error shape (botocore's ``Error.QueryErrorCode``).
    """
    if error in SQS_ERRORS:
        code, default_status = SQS_ERRORS[error]
    else:
        code, default_status = error, COMMON_ERRORS.get(error, 400)
    status = status or default_status
    info = ErrorInfo()
    try:
        yield info
    except ClientError as exc:
        info.response = exc.response
    else:
        raise AssertionError(f"expected the SQS error {error} ({code}), but the call succeeded")
    resp = info.response
    meta = resp.get("ResponseMetadata", {})
    detail = f"{error}: got {resp.get('Error')} (HTTP {meta.get('HTTPStatusCode')})"
    assert resp["Error"].get("Code") == code, detail
    assert meta.get("HTTPStatusCode") == status, detail
    if protocol_of(client) == "query":
        assert resp["Error"].get("Type") == "Sender", f"{error}: <Type> is not Sender; {detail}"
    else:
        header = meta.get("HTTPHeaders", {}).get("x-amzn-query-error")
        assert header is not None, f"{error}: no x-amzn-query-error header; {detail}"
        assert header.split(";") == [code, "Sender"], f"{error}: x-amzn-query-error {header!r}"
        if error in SQS_ERRORS:  # modeled errors: __type is "com.amazonaws.sqs#<shape>"
            assert resp["Error"].get("QueryErrorCode") == error, (
                f"{error}: __type names {resp['Error'].get('QueryErrorCode')!r}"
            )


# --------------------------------------------------------------------------------------------
# Raw HTTP (for wire-level checks)
# --------------------------------------------------------------------------------------------


class RawResponse:
    def __init__(self, status: int, headers: dict, body: bytes):
        self.status = status
        self.headers = headers  # lower-cased names
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"RawResponse({self.status}, {self.headers}, {self.body[:500]!r})"


def raw_request(endpoint: str, method: str, path: str, body: bytes = b"", headers=None):
    parsed = urllib.parse.urlsplit(endpoint)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=dict(headers or {}))
        resp = conn.getresponse()
        data = resp.read()
        return RawResponse(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def raw_json_call(endpoint: str, action: str, payload: dict, headers=None) -> RawResponse:
    """One SQS JSON 1.0 request, unsigned."""
    hdrs = {
        "Content-Type": "application/x-amz-json-1.0",
        "X-Amz-Target": f"AmazonSQS.{action}",
    }
    hdrs.update(headers or {})
    return raw_request(endpoint, "POST", "/", json.dumps(payload).encode(), hdrs)


def raw_query_call(endpoint: str, params: dict, path: str = "/", headers=None) -> RawResponse:
    """One SQS query request (form-encoded POST), unsigned."""
    form = {"Version": QUERY_API_VERSION, **params}
    hdrs = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    hdrs.update(headers or {})
    return raw_request(endpoint, "POST", path, urllib.parse.urlencode(form).encode(), hdrs)
