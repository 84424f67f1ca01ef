from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, func, make_url, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import settings_for
from tests.service.conftest import job_spec
from tests.support.keys import TEST_PRINCIPAL
from tests.support.processes import free_port, wait_for
from trainq.services.db import session as session_module
from trainq.services.db.models import Job
from trainq.services.db.session import autocommit, create_engine_for, session_scope
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.states import Device
from trainq.services.leases.keeper import LeaseKeeper
from trainq.services.settings import Settings


def jobs_stored(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(Job)).scalar_one()


def test_session_scope_commits_when_the_block_ends(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        submitting.store(session, TEST_PRINCIPAL, job_spec(), name=None, device=Device.auto, idempotency_key=None)
    assert jobs_stored(factory) == 1


def test_session_scope_rolls_back_when_the_block_raises(factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError, match="after the submit"), session_scope(factory) as session:
        submitting.store(session, TEST_PRINCIPAL, job_spec(), name=None, device=Device.auto, idempotency_key=None)
        raise RuntimeError("after the submit")
    assert jobs_stored(factory) == 0


def test_sqlite_connections_use_wal_a_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    engine = create_engine_for(settings_for(f"sqlite:///{tmp_path / 'new' / 'folder' / 'trainq.db'}"))
    try:
        with engine.connect() as connection:
            pragma = {
                name: connection.execute(text(f"PRAGMA {name}")).scalar()
                for name in ("journal_mode", "busy_timeout", "foreign_keys")
            }
    finally:
        engine.dispose()
    assert pragma == {"journal_mode": "wal", "busy_timeout": 30_000, "foreign_keys": 1}


def _backend_pid(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def _terminate(url: str, pid: int) -> None:
    """The server drops a connection, as a restart or an idle timeout would."""
    with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        wait_for(
            lambda: admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone() == (0,),
            timeout=10,
            what=f"backend {pid} is gone",
        )


@pytest.fixture
def dropped_connection(new_postgres_database: Callable[..., str]) -> Iterator[tuple[Engine, int]]:
    """An engine whose one pooled connection the server has just dropped, and that
    connection's backend pid."""
    url = new_postgres_database(migrated=False)
    engine = create_engine_for(settings_for(url))
    try:
        dropped = _backend_pid(engine)
        _terminate(url, dropped)
        yield engine, dropped
    finally:
        engine.dispose()


def test_a_pooled_connection_the_server_dropped_while_idle_is_replaced_before_use(
    dropped_connection: tuple[Engine, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, dropped = dropped_connection
    # any idle time counts as long: the test need not wait out PING_AFTER_IDLE_SECONDS
    monkeypatch.setattr(session_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert _backend_pid(engine) != dropped


def test_a_connection_in_use_a_moment_ago_is_not_tested_and_its_failure_renews_the_pool(
    dropped_connection: tuple[Engine, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the round trip saved on every transaction: a server restart under a busy pool shows
    # once, as an error, after which the pool's connections are all replaced
    engine, dropped = dropped_connection
    monkeypatch.setattr(session_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
    with pytest.raises(OperationalError) as raised:
        _backend_pid(engine)
    assert raised.value.connection_invalidated
    assert _backend_pid(engine) != dropped


def test_an_autocommit_connection_commits_each_statement_even_on_a_connection_just_tested(
    new_postgres_database: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the pool's test of an idle connection (SELECT 1) must not leave a transaction open,
    # or switching the connection to autocommit (an API key's check) fails
    monkeypatch.setattr(session_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    engine = create_engine_for(settings_for(new_postgres_database(migrated=False)))
    try:
        factory = sessionmaker(engine)
        _backend_pid(engine)  # a connection in the pool, tested at its next checkout
        with autocommit(factory) as connection:
            connection.execute(text("CREATE TABLE noted (n integer)"))
            connection.execute(text("INSERT INTO noted VALUES (1)"))
            # no COMMIT sent: a connection of its own sees the row all the same
            with engine.connect() as other:
                assert other.execute(text("SELECT count(*) FROM noted")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_lease_heartbeat_while_the_database_is_unreachable_logs_one_line_without_a_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # a port nothing listens on: every connection is refused, as when PostgreSQL is stopped
    unreachable = f"postgresql://trainq@127.0.0.1:{free_port()}/trainq"
    settings = Settings(
        TRAINQ_HOME=tmp_path, DATABASE_URL=unreachable, TRAINQ_HEARTBEAT_SECONDS=0.05, TRAINQ_LEASE_SECONDS=1
    )
    keeper = LeaseKeeper(session_module.session_factory(settings), Job, "some-job", attempt=1, settings=settings)
    caplog.set_level(logging.WARNING, logger="trainq.services.leases.keeper")

    def failed_beats() -> list[logging.LogRecord]:
        return [record for record in caplog.records if "heartbeat failed" in record.getMessage()]

    with keeper:
        wait_for(lambda: len(failed_beats()) >= 2, timeout=30, what="two heartbeats fail")
    for record in failed_beats():
        assert record.levelno == logging.WARNING and record.exc_info is None
        message = record.getMessage()
        assert "\n" not in message and "the database is unreachable" in message, message
        assert "Connection refused" in message or "connection failed" in message, message
    # the work goes on: only another worker's takeover (or a cancel) stops it
    assert not keeper.stop_fit.is_set()
