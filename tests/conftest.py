"""Fixtures every test folder may use: one throwaway PostgreSQL per test session, and
SQLite databases of the embedded default.

The server starts only when a test asks for it. `postgres_url` is an empty database shared
by the session; `new_postgres_database()` makes a fresh one, migrated to head by default,
copied from a template migrated once (a copy takes milliseconds, a migration much longer).
`sqlite_home` is the same for SQLite: a folder holding a copy of a database migrated once.
Both templates hold the test session's API key (tests/support/keys.py).
"""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import keys
from tests.support.postgres import PostgresServer
from tests.support.processes import Processes
from trainq.services.db.migrate import upgrade
from trainq.services.settings import Settings

MIGRATED_TEMPLATE = "trainq_migrated"

# what TrainqClient (and anything reading the settings) sends, in this process
os.environ["TRAINQ_API_KEY"] = keys.TEST_KEY


def settings_for(url: str) -> Settings:
    """trainq's settings pointing at `url`, whatever the test runner's environment says."""
    return Settings(DATABASE_URL=url)


def sqlite_settings(home: Path, **values: Any) -> Settings:
    """The embedded default's settings with its home in `home`: SQLite database and broker there."""
    return Settings(TRAINQ_HOME=home, DATABASE_URL=f"sqlite:///{home / 'trainq.db'}", **values)


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("sqlite-template")
    upgrade(sqlite_settings(home))
    keys.grant_in(sqlite_settings(home))
    return home / "trainq.db"


@pytest.fixture
def sqlite_home(tmp_path: Path, _migrated_sqlite: Path) -> Path:
    """`tmp_path`, holding a SQLite database migrated to head (a copy of one migrated once)."""
    shutil.copyfile(_migrated_sqlite, tmp_path / "trainq.db")
    return tmp_path


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def postgres_url(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("trainq_session")


@pytest.fixture(scope="session")
def _migrated_template(postgres_server: PostgresServer) -> str:
    settings = settings_for(postgres_server.create_database(MIGRATED_TEMPLATE))
    upgrade(settings)
    keys.grant_in(settings)
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


# a failed test that ran trainq's processes (a fixture with `.processes`) shows their logs
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and call.when in ("setup", "call"):
        for value in getattr(item, "funcargs", {}).values():
            processes = getattr(value, "processes", None)
            if isinstance(processes, Processes):
                report.sections.append(("trainq process logs", processes.logs()))
    return report
