"""PostgreSQL for the examples that archive into it: a schema of the run's own, SQL via ``psql``.

* ``Postgres``: the database at ``$EXAMPLES_PG_URL`` (default
  ``postgres://postgres@127.0.0.1:5432/test``). Entering it checks that the server answers and
  names a schema unique to this run (``baton_example_<random>``, which the sinks create with
  their tables); leaving it drops that schema with everything in it, whatever happened, so no
  run depends on what an earlier one left. ``query`` runs one statement with ``psql`` and
  returns its rows as lists of strings.
* ``TcpProxy``: a small asyncio TCP proxy in front of PostgreSQL, on a port of its own, that
  the example stops (every connection closed, nothing accepted) and starts again on the same
  port: PostgreSQL out of reach for Baton while the machine's PostgreSQL server keeps running.

Only the Python standard library and the ``psql`` client.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import threading
import urllib.parse
import uuid

from harness import ExampleFailed, check

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/test"


class Postgres:
    """The examples' PostgreSQL database and a schema of this run, dropped at the end."""

    def __init__(self) -> None:
        self.url = os.environ.get("EXAMPLES_PG_URL") or DEFAULT_URL
        self.schema = f"baton_example_{uuid.uuid4().hex[:12]}"
        parts = urllib.parse.urlsplit(self.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 5432

    def __enter__(self) -> "Postgres":
        check(shutil.which("psql") is not None, "the psql client is installed (PostgreSQL's command-line tool)")
        self.query("SELECT 1")
        return self

    def __exit__(self, *exc) -> None:
        self.query(f"DROP SCHEMA IF EXISTS {self.schema} CASCADE")

    def table(self, name: str) -> str:
        """``schema.name`` in this run's schema."""
        return f"{self.schema}.{name}"

    def url_via(self, host: str, port: int) -> str:
        """This database's URL with another host and port (e.g. a proxy's)."""
        parts = urllib.parse.urlsplit(self.url)
        user = parts.netloc.rpartition("@")[0]
        return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}@{host}:{port}" if user else f"{host}:{port}"))

    def query(self, sql: str) -> list[list[str]]:
        """Runs one SQL statement; returns its rows, each a list of column texts."""
        done = subprocess.run(
            ["psql", self.url, "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
             "--field-separator=|", "--set=ON_ERROR_STOP=1", "--command", sql],
            capture_output=True, text=True, timeout=60, env=dict(os.environ, PGCONNECT_TIMEOUT="5"),
        )
        if done.returncode != 0:
            raise ExampleFailed(f"psql at {self.url} failed ({sql[:80]}...): {done.stderr.strip()}")
        return [line.split("|") for line in done.stdout.splitlines() if line]


class TcpProxy:
    """A TCP proxy to ``host:port`` on 127.0.0.1, run by an asyncio loop in a thread of its own."""

    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.port = 0  # chosen at the first start, kept for the next ones
        self.connections = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._server: asyncio.base_events.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def __enter__(self) -> "TcpProxy":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _run(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self) -> None:
        """Listens (again) on the proxy's port."""
        self._run(self._start())

    def stop(self) -> None:
        """Stops listening and closes every connection through the proxy."""
        self._run(self._stop())

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _serve(self, client_reader, client_writer) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        self.connections += 1
        pair = {client_writer, server_writer}
        self._writers |= pair
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))
        self._writers -= pair

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
