"""What the API answers when a part fails: 503 naming the database while it is
unreachable, a 500 logged once for a real bug, and every error on a connection that
stays open for the client's next request (a real uvicorn server, a raw socket)."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI

from tests.api.conftest import asgi_client
from tests.support.keys import TEST_KEY
from tests.support.processes import free_port, wait_for
from trainq.api.app import create_app
from trainq.services.settings import Settings
from trainq.services.spec import SEED_EXAMPLE


def unreachable_postgres_url() -> str:
    # a port nothing listens on: every connection is refused, as when PostgreSQL is stopped
    return f"postgresql://trainq@127.0.0.1:{free_port()}/trainq"


@pytest.mark.anyio
async def test_while_the_database_is_unreachable_reads_and_submits_answer_503_with_retry_after_naming_it(
    tmp_path: Path,
) -> None:
    app = create_app(Settings(TRAINQ_HOME=tmp_path, DATABASE_URL=unreachable_postgres_url()))
    async with asgi_client(app) as client:
        answers = [
            await client.get("/v1/jobs"),
            await client.get("/v1/jobs/0123456789abcdef"),
            await client.post("/v1/jobs", json=SEED_EXAMPLE),
            await client.get("/v1/datasets"),
        ]
    for answer in answers:
        assert answer.status_code == 503, answer.text
        assert answer.headers["retry-after"] == "5"
        assert answer.json()["errors"] == [{"field": "database", "message": "is unreachable"}]
        assert "database is unreachable" in answer.json()["detail"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Server:
    """uvicorn serving `app` in a thread, on a port of its own."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="info"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30, what="uvicorn started")
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    app = create_app(Settings(TRAINQ_HOME=tmp_path, DATABASE_URL=unreachable_postgres_url()))

    @app.get("/bug")
    def bug() -> None:
        raise RuntimeError("a bug in a route")

    with Server(app) as server:
        yield server


def exchange(sock: socket.socket, path: str) -> bytes:
    """One request on the open socket and its whole answer (every answer here has a Content-Length)."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TEST_KEY}\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection instead of answering GET {path}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection mid-answer to GET {path}"
        body += chunk
    return head


def test_a_503_and_a_500_are_each_answered_on_a_connection_that_then_answers_the_next_request(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO), socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        heads = [exchange(sock, path) for path in ("/v1/jobs", "/healthz", "/bug", "/healthz", "/bug", "/healthz")]

    statuses = [head.split(b"\r\n")[0] for head in heads]
    assert statuses == [
        b"HTTP/1.1 503 Service Unavailable",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 500 Internal Server Error",
        b"HTTP/1.1 200 OK",
        b"HTTP/1.1 500 Internal Server Error",
        b"HTTP/1.1 200 OK",
    ]
    # each bug logged once, with its traceback, and by us, not again by the server
    bugs = [record for record in caplog.records if record.exc_info and "a bug in a route" in str(record.exc_info[1])]
    assert [record.name for record in bugs] == ["trainq.api.errors"] * 2
    assert not [record for record in caplog.records if "Exception in ASGI application" in record.getMessage()]
