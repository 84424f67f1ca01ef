"""Liveness and readiness against a real database and a real (or unreachable) broker."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from api.app import create_app
from services.settings import Settings
from tests.api.conftest import settings_at

pytestmark = pytest.mark.anyio


async def test_healthz_and_readyz_answer_ok_with_the_database_and_broker_up(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"database": "ok", "broker": "ok"})


async def test_readyz_is_503_naming_the_broker_when_it_is_unreachable(settings: Settings, tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    app = create_app(settings_at(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        ready = await client.get("/readyz")

    assert ready.status_code == 503
    assert ready.json()["database"] == "ok" and ready.json()["broker"].startswith("unreachable")
