"""Liveness and readiness against a real database and a real (or unreachable) broker."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import Broker, asgi_client
from tests.conftest import sqlite_settings
from tests.support.redis import RedisServer
from trainq.api.app import create_app
from trainq.services.settings import Settings
from trainq.services.spec import SEED_EXAMPLE

pytestmark = pytest.mark.anyio


async def test_healthz_and_readyz_answer_ok_with_the_database_and_broker_up(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"database": "ok", "broker": "ok"})


async def test_readyz_is_503_naming_the_broker_when_it_is_unreachable(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    app = create_app(sqlite_settings(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0"))
    async with asgi_client(app) as client:
        ready = await client.get("/readyz")

    assert ready.status_code == 503
    assert ready.json()["database"] == "ok" and ready.json()["broker"].startswith("unreachable")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (`make test` installs it)")
    server = RedisServer().start()
    yield server
    server.close()


async def test_on_redis_a_submit_is_enqueued_there_and_readyz_follows_the_broker(
    settings: Settings, tmp_path: Path, redis_server: RedisServer
) -> None:
    on_redis = sqlite_settings(tmp_path, REDIS_URL=redis_server.url)
    app = create_app(on_redis)
    async with asgi_client(app) as client:
        ready = await client.get("/readyz")
        job = (await client.post("/v1/jobs", json=SEED_EXAMPLE)).json()
        messages = Broker(redis_server.url).take_all()
        redis_server.stop()
        gone = await client.get("/readyz")

    assert (ready.status_code, ready.json()) == (200, {"database": "ok", "broker": "ok"})
    assert messages == [("trainq.run_job", [job["id"]])]
    assert gone.status_code == 503 and gone.json()["database"] == "ok"
