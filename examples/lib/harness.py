"""What every example shares: a Baton server of its own, HTTP calls, a local receiver, checks.

* ``Baton``: starts ``$BATON_BIN serve --listen 127.0.0.1:0`` on a temporary data dir with the
  given ``BATON_*`` settings, reads its ``baton listening on http://...`` line, waits for
  ``GET /ready``, and stops it (SIGTERM) at the end. ``call`` makes a JSON request and returns
  ``(status, json)``; ``cli`` runs the ``baton`` command-line tool against the server.
* ``Receiver``: a local HTTP server that records every POST (for callbacks, push and topic URL
  targets) and answers with a status the example can change while it runs.
* ``check`` stops the example with a message when a condition does not hold (exit status 1),
  ``step`` prints what the example does next, ``summary`` prints the closing lines.

Only the Python standard library, so the helpers work with any client library beside them.
"""

from __future__ import annotations

import http.server
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

START_TIMEOUT_S = 30.0


class ExampleFailed(Exception):
    """A check of the example did not hold."""


def check(condition: bool, what: str) -> None:
    """Stops the example unless ``condition`` holds; ``what`` says what was expected."""
    if not condition:
        raise ExampleFailed(what)


STARTED = time.monotonic()


def step(text: str) -> None:
    print(f"-- {text} [{time.monotonic() - STARTED:.1f} s]", flush=True)


def wait_until(predicate, what: str, timeout_s: float = 10.0, interval_s: float = 0.05):
    """Polls ``predicate`` until it returns something truthy (and returns that), or fails."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise ExampleFailed(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(interval_s)


def run_example(name: str, main) -> None:
    """Runs ``main()``, printing ``<name>: OK`` or the failure, and exits accordingly."""
    started = time.monotonic()
    try:
        main()
    except ExampleFailed as failure:
        print(f"{name}: FAILED: {failure}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"{name}: OK ({time.monotonic() - started:.1f} s)", flush=True)


def summary(lines: list[str]) -> None:
    print("== summary", flush=True)
    for line in lines:
        print(f"   {line}", flush=True)


class Baton:
    """One ``baton serve`` of this example, on a free port and a temporary data dir."""

    def __init__(self, settings: dict[str, str] | None = None):
        self.binary = os.environ.get("BATON_BIN") or str(
            Path(__file__).resolve().parents[2] / "target" / "debug" / "baton"
        )
        self.settings = settings or {}
        self._tmp = tempfile.TemporaryDirectory(prefix="baton-example-")
        self.data_dir = Path(self._tmp.name) / "data"
        self.log_path = Path(self._tmp.name) / "baton.log"
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def __enter__(self) -> "Baton":
        self.start()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None and kind is not SystemExit:
            tail = self.log_path.read_bytes()[-3000:].decode(errors="replace") if self.log_path.exists() else ""
            print(f"--- baton stderr (tail) ---\n{tail}", file=sys.stderr)
        self.stop()
        self._tmp.cleanup()

    def start(self, listen: str = "127.0.0.1:0") -> None:
        env = dict(os.environ)
        env.update({f"BATON_{key.upper()}": str(value) for key, value in self.settings.items()})
        env.setdefault("RUST_LOG", "warn")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "--listen", listen, "--data-dir", str(self.data_dir)],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        line = self._first_line(deadline)
        prefix = "baton listening on "
        check(line.startswith(prefix), f"baton's first line names its address, got {line!r}")
        self.url = line[len(prefix):].strip().rstrip("/")
        wait_until(lambda: self._ready(), "GET /ready to answer 200", START_TIMEOUT_S)

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()
        self.proc = None

    def restart(self) -> None:
        """Stops the server and starts it again on the same port and data dir."""
        listen = self.url.removeprefix("http://")
        self.stop()
        self.start(listen)

    def _first_line(self, deadline: float) -> str:
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            check(remaining > 0, f"baton printed no listening line in time: {buf!r}")
            ready, _, _ = select.select([fd], [], [], remaining)
            if ready:
                chunk = os.read(fd, 4096)
                check(bool(chunk), f"baton exited before listening: {buf!r}")
                buf += chunk
        return buf.split(b"\n", 1)[0].decode()

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/ready", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def call(self, method: str, path: str, body=None, timeout_s: float = 30.0):
        """``method path`` with ``body`` as JSON (unless it is ``str``/``bytes``) → (status, JSON)."""
        data = None
        headers = {}
        if body is not None:
            data = body if isinstance(body, bytes) else (
                body.encode() if isinstance(body, str) else json.dumps(body).encode()
            )
            headers["content-type"] = "application/json"
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as err:
            status, raw = err.code, err.read()
        try:
            answer = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            answer = raw.decode(errors="replace")
        return status, answer

    def ok(self, method: str, path: str, body=None, timeout_s: float = 30.0):
        """As ``call``, but the status must be 2xx; returns the JSON."""
        status, answer = self.call(method, path, body, timeout_s)
        check(200 <= status < 300, f"{method} {path} answered {status}: {answer}")
        return answer

    def read_stream(self, stream: str) -> list[dict]:
        """Every record the stream holds, partition by partition (read at once), in offset order."""

        def read_partition(part: dict) -> list[dict]:
            records, offset = [], part["first_offset"]
            while offset < part["next_offset"]:
                page = self.ok("GET", f"/v1/streams/{stream}/records?partition={part['partition']}"
                                      f"&from_offset={offset}&max=1000")
                records += page["records"]
                offset = page["next_offset"]
            return records

        partitions = self.ok("GET", f"/v1/streams/{stream}")["stats"]["partitions"]
        with ThreadPoolExecutor(len(partitions)) as pool:
            return [r for records in pool.map(read_partition, partitions) for r in records]

    def cli(self, *args: str, expect_status: int = 0) -> str:
        """Runs ``baton <args>`` against this server; returns its stdout."""
        env = dict(os.environ, BATON_URL=self.url)
        done = subprocess.run([self.binary, *args], env=env, capture_output=True, text=True, timeout=60)
        check(
            done.returncode == expect_status,
            f"`baton {' '.join(args)}` exited {done.returncode} (wanted {expect_status}): {done.stderr.strip()}",
        )
        return done.stdout

    def cli_json(self, *args: str):
        return json.loads(self.cli(*args))

    def curl(self, *args: str) -> tuple[int, object]:
        """Runs ``curl -s <args>`` (the URL inside args), returning the HTTP status and JSON."""
        done = subprocess.run(
            ["curl", "-s", "-w", "\n%{http_code}", *args], capture_output=True, text=True, timeout=60
        )
        check(done.returncode == 0, f"curl {' '.join(args)} failed: {done.stderr.strip()}")
        raw, _, code = done.stdout.rpartition("\n")
        try:
            answer = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            answer = raw
        return int(code), answer


class Received:
    """One request a ``Receiver`` got."""

    def __init__(self, path: str, headers: dict[str, str], body: bytes, answered: int, at: float):
        self.path = path
        self.at = at  # time.monotonic() when it arrived
        self.headers = headers
        self.body = body
        self.answered = answered

    def json(self):
        return json.loads(self.body)


class Receiver:
    """A local HTTP endpoint recording each POST and answering ``status`` (changeable)."""

    def __init__(self, status: int = 200, delay_s: float = 0.0):
        self.status = status
        self.delay_s = delay_s
        self.got: list[Received] = []
        self.lock = threading.Lock()
        self.in_flight = 0
        self.in_flight_max = 0
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):  # noqa: N802 (http.server's naming)
                at = time.monotonic()
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.in_flight += 1
                    receiver.in_flight_max = max(receiver.in_flight_max, receiver.in_flight)
                if receiver.delay_s:
                    time.sleep(receiver.delay_s)
                with receiver.lock:
                    status = receiver.status
                    receiver.in_flight -= 1
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.got.append(Received(self.path, headers, body, status, at))
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def requests(self, status: int | None = None) -> list[Received]:
        with self.lock:
            return [r for r in self.got if status is None or r.answered == status]

    def wait_for(self, n: int, status: int | None = None, timeout_s: float = 10.0) -> list[Received]:
        return wait_until(
            lambda: (lambda got: got if len(got) >= n else None)(self.requests(status)),
            f"{n} requests at {self.url}" + (f" answered {status}" if status else ""),
            timeout_s,
        )


def quote(text: str) -> str:
    return urllib.parse.quote(text, safe="")
