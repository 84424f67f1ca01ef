"""The end-to-end stack: a real PostgreSQL, a real Redis, the API over HTTP, Celery workers.

Per test module: a fresh, empty database on the session's throwaway PostgreSQL (the root
fixture `postgres_server`), migrated by `trainq db upgrade`; a throwaway Redis server of
its own (the requeue test restarts it empty); and one API process. Workers are started
by the tests that need them, with the settings they need, and stopped when the test ends.
When a test fails, the log of every process of its stack is attached to the report.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest
from celery import Celery
from playwright.sync_api import Browser, Page, Route, sync_playwright
from psycopg import sql
from sqlalchemy import make_url

from tests.conftest import settings_for
from tests.support import keys
from tests.support.postgres import PostgresServer
from tests.support.processes import BIN, Api, Process, Processes, process_env, stop, wait_for
from tests.support.redis import RedisServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# the dashboard's browser tests: Debian's chromium, driven by Playwright

MIGRATE_DEADLINE_SECONDS = 60
WORKER_READY_SECONDS = 60


def libpq_url(url: str) -> str:
    """The URL psycopg and trainq's DATABASE_URL take: postgresql://, no SQLAlchemy driver."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class Stack:
    folder: Path
    database_url: str
    redis: RedisServer
    processes: Processes
    api: Api | None = None
    workers: list[Process] = field(default_factory=list)
    postgres: PostgresServer | None = None  # set where a test may stop and start it

    @property
    def env(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis.url,
            "TRAINQ_HOME": str(self.folder / "home"),
        }

    def client(self) -> httpx.Client:
        assert self.api is not None
        return self.api.client()

    def migrate(self) -> None:
        done = subprocess.run(
            [str(BIN / "trainq"), "db", "upgrade"],
            env=process_env(self.env),
            capture_output=True,
            timeout=MIGRATE_DEADLINE_SECONDS,
        )
        assert done.returncode == 0, f"trainq db upgrade failed:\n{done.stdout.decode()}\n{done.stderr.decode()}"
        keys.grant_in(settings_for(self.database_url))

    def start_api(self, **env: str) -> Api:
        self.api = self.processes.api({**self.env, **env})
        return self.api

    def worker(self, name: str, env: Mapping[str, str] | None = None, *, wait: bool = True) -> Process:
        """A Celery worker (one pool process) named `name@e2e`, with `env` on top of the stack's;
        with `wait`, until it answers a ping."""
        process = self.processes.worker({**self.env, **(env or {})}, name=f"{name}-{uuid.uuid4().hex[:6]}")
        self.workers.append(process)
        if wait:
            self.wait_for_workers([process])
        return process

    def wait_for_workers(self, workers: list[Process]) -> None:
        names = {f"{process.name}@e2e" for process in workers}
        app = self.celery()
        answered: set[str] = set()

        def all_answer() -> bool:
            for process in workers:
                if not process.running():
                    raise AssertionError(f"worker {process.name} exited:\n{process.describe()}")
            for reply in app.control.ping(destination=sorted(names - answered), timeout=0.5):
                answered.update(reply)
            return answered >= names

        wait_for(
            all_answer,
            timeout=WORKER_READY_SECONDS,
            what=f"workers {sorted(names)} answer a ping",
            processes=self.processes,
            state=lambda: sorted(answered),
        )

    def stop_workers(self) -> None:
        stop(self.workers)
        self.workers.clear()

    def celery(self) -> Celery:
        """A Celery app of the test's own on the stack's broker: for pings and for extra messages."""
        return Celery(
            "e2e",
            broker=self.redis.url,
            set_as_current=False,
            config_source={"task_serializer": "json", "accept_content": ["json"]},
        )

    def row_counts(self) -> dict[str, int]:
        """The number of rows of every table in the database, read directly from PostgreSQL."""
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            tables = [
                row[0]
                for row in connection.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
                )
            ]
            count = sql.SQL("SELECT count(*) FROM {}")
            return {table: connection.execute(count.format(sql.Identifier(table))).fetchall()[0][0] for table in tables}

    def query(self, statement: str, *params: object) -> list[tuple]:
        with psycopg.connect(self.database_url, autocommit=True) as connection:
            return connection.execute(statement, params).fetchall()


@contextmanager
def running_stack(postgres_server: PostgresServer, folder: Path) -> Iterator[Stack]:
    database = f"e2e_{uuid.uuid4().hex[:12]}"
    database_url = libpq_url(postgres_server.create_database(database))
    (folder / "redis").mkdir()
    redis = RedisServer(folder / "redis").start()
    processes = Processes(folder / "logs")
    stack = Stack(folder, database_url, redis, processes)
    try:
        stack.migrate()
        stack.start_api()
        yield stack
    finally:
        processes.stop_all()
        redis.close()
        if not postgres_server.running():
            postgres_server.start()
        postgres_server.drop_database(database)


@pytest.fixture(scope="module")
def stack(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp(f"stack-{request.module.__name__.rsplit('.', 1)[-1]}")
    with running_stack(postgres_server, folder) as stack:
        yield stack


@pytest.fixture(scope="module")
def outage_stack(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A stack on a PostgreSQL of its own (`stack.postgres`), which its tests stop and start."""
    folder = tmp_path_factory.mktemp(f"outage-stack-{request.module.__name__.rsplit('.', 1)[-1]}")
    with PostgresServer() as server, running_stack(server, folder) as stack:
        stack.postgres = server
        yield stack


@pytest.fixture(autouse=True)
def _workers_stop_with_their_test(request: pytest.FixtureRequest) -> Iterator[None]:
    stacks = [request.getfixturevalue(name) for name in ("stack", "outage_stack") if name in request.fixturenames]
    yield
    for stack in stacks:
        stack.stop_workers()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM.exists(), "Debian's chromium is not installed (`make system-packages` installs it)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def dialogs() -> list[str]:
    return []


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def cut_off_network(page: Page) -> list[tuple[str, str]]:
    """Refuse the page every request to anything but loopback, as a machine with no
    internet would; returns the list the refused requests are added to, each as
    (Playwright's resource type: script, stylesheet, image, fetch..., URL)."""
    from urllib.parse import urlsplit

    refused: list[tuple[str, str]] = []

    def only_loopback(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOOPBACK_HOSTS:
            route.continue_()
        else:
            refused.append((route.request.resource_type, url))
            route.abort("internetdisconnected")

    page.route("**/*", only_loopback)
    return refused
