"""The request body's size limit, before anything parses a body; and the draining of what a
refused client still sends (a dataset upload's route drains the same way)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trainq.api import errors


class BodySizeLimit:
    """Refuse a request body over `max_bytes` with 413 before anything parses it, whether
    it declares its length (Content-Length) or streams it (chunked).

    The body is read here, up to the limit, and handed on whole: the routes parse JSON,
    which needs all of it anyway. Past the limit, the rest is read and dropped (up to
    `drain_bytes`), so that a client still sending its body reads the 413 rather than a
    connection reset; a client that asked `Expect: 100-continue` is answered at once.

    A body over LARGE_BYTES waits for its turn before it is read: a body costs a few times
    its size while parsed, validated and stored (a 9.4 MB job of inline data about 47 MB
    above the API's resting size, its numbers parsed straight into arrays by
    api/inline_body.py; any other JSON many times more, as Python objects), so
    LARGE_AT_ONCE of them are handled at a time and the others wait, unread, in their
    connections: 16 such jobs submitted at once peak at 410 MiB, four at a time
    (tests/e2e/test_memory_bounds.py; 5.7 GB when all were parsed at once as Python lists)."""

    LARGE_BYTES = 1024 * 1024
    LARGE_AT_ONCE = 4

    def __init__(self, app: ASGIApp, max_bytes: int, drain_bytes: int, streamed: tuple[str, ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.drain_bytes = drain_bytes
        # POSTs to these paths pass through unread: their route streams the body and limits it
        self.streamed = streamed
        self._large_turns = asyncio.Semaphore(self.LARGE_AT_ONCE)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"] == "POST" and scope["path"] in self.streamed):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = _content_length(headers.get(b"content-length"))
        if declared is not None and declared > self.max_bytes:
            if headers.get(b"expect", b"").lower() != b"100-continue" and declared <= self.drain_bytes:
                await drain(_chunks(receive), self.drain_bytes)
            await self._too_large(scope, receive, send)
            return
        async with AsyncExitStack() as turn:
            await self._read(scope, receive, send, turn, declared)

    async def _read(
        self, scope: Scope, receive: Receive, send: Send, turn: AsyncExitStack, declared: int | None
    ) -> None:
        """Read the body (once a large one's turn came, held in `turn`) and hand it on."""
        waited = declared is not None and declared > self.LARGE_BYTES
        if waited:
            await turn.enter_async_context(self._large_turns)
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.LARGE_BYTES and not waited:
                # a streamed (chunked) body shows its size only as it comes
                waited = True
                await turn.enter_async_context(self._large_turns)
            if size > self.max_bytes:
                if message.get("more_body", False):
                    await drain(_chunks(receive), self.drain_bytes - size)
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        del chunks  # the body's one copy is `body`
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # what comes after the body: the client's disconnect
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = errors.error_response(
            413,
            [("body", f"is larger than the limit of {self.max_bytes} bytes")],
            detail=f"The request body is larger than the limit of {self.max_bytes} bytes."
            + (
                " Upload large data as a dataset (POST /v1/datasets) and name it in the job as data.datasetId."
                if scope["path"].startswith("/v1/jobs")
                else ""
            ),
        )
        await response(scope, receive, send)


def _content_length(value: bytes | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


async def drain(chunks: AsyncIterator[bytes], limit: int) -> None:
    """Read and drop what a client still sends after its body was refused (413), up to
    `limit` bytes more, so that it reads the answer rather than a reset connection."""
    drained = 0
    async for chunk in chunks:
        drained += len(chunk)
        if drained > limit:
            return


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return
