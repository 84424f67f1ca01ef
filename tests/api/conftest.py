"""The API over httpx's ASGI transport, on a real SQLite database migrated by Alembic and
a real broker: Celery's SQLAlchemy transport on a SQLite file, whose messages the tests read."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from kombu import Connection
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import sqlite_settings
from tests.support.keys import HEADERS
from trainq.api.app import create_app
from trainq.services.db.session import create_engine_for
from trainq.services.placement import QUEUES
from trainq.services.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(sqlite_home: Path) -> Settings:
    return sqlite_settings(sqlite_home, TRAINQ_MAX_REQUEST_BYTES=64 * 1024)


def asgi_client(app: FastAPI, headers: Mapping[str, str] = HEADERS) -> httpx.AsyncClient:
    """A client of `app` over ASGI, sending the test session's key (which the migrated
    template holds) unless `headers` say otherwise."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://trainq.test", headers=headers)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The app `client` talks to, for a test that looks inside it (its model cache)."""
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as client:
        yield client


@pytest.fixture
def factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(settings)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


class Broker:
    """The messages the API put on the embedded broker."""

    def __init__(self, url: str) -> None:
        self.url = url

    def take_all(self) -> list[tuple[str, list[Any]]]:
        """(task name, args) of every waiting message on every job queue (cpu, gpu and
        shared), removing them."""
        taken = []
        names = sorted(set(QUEUES.values()))
        with Connection(self.url) as connection:
            for name in names:
                with connection.SimpleQueue(name) as queue:
                    while True:
                        try:
                            message = queue.get(timeout=0.2)
                        except queue.Empty:
                            break
                        taken.append((message.headers["task"], message.decode()[0]))
                        message.ack()
        return taken


@pytest.fixture
def broker(settings: Settings) -> Broker:
    return Broker(settings.broker_url)
