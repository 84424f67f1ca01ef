"""Fixtures every test folder may use: one throwaway PostgreSQL per test session.

The server starts only when a test asks for it. `postgres_url` is an empty database shared
by the session; `new_postgres_database()` makes a fresh one, migrated to head by default,
copied from a template migrated once (a copy takes milliseconds, a migration much longer).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest

from services.db.migrate import upgrade
from services.settings import Settings
from tests.support.postgres import PostgresServer

MIGRATED_TEMPLATE = "trainq_migrated"


def settings_for(url: str) -> Settings:
    """trainq's settings pointing at `url`, whatever the test runner's environment says."""
    return Settings(DATABASE_URL=url)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("trainq_session")


@pytest.fixture(scope="session")
def _migrated_template(postgres_server: PostgresServer) -> str:
    upgrade(settings_for(postgres_server.create_database(MIGRATED_TEMPLATE)))
    return MIGRATED_TEMPLATE


_database_numbers = itertools.count()


@pytest.fixture
def new_postgres_database(
    postgres_server: PostgresServer, request: pytest.FixtureRequest
) -> Iterator[Callable[..., str]]:
    """`new_postgres_database(migrated=True)`: the URL of a database of its own, dropped after the test."""
    created: list[str] = []

    def create(migrated: bool = True) -> str:
        name = f"trainq_test_{next(_database_numbers)}"
        template = request.getfixturevalue("_migrated_template") if migrated else None
        created.append(name)
        return postgres_server.create_database(name, template=template)

    yield create
    for name in created:
        postgres_server.drop_database(name)
