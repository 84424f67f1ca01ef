from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import settings_for
from tests.service.conftest import job_spec
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.models import Job
from trainq.services.db.session import create_engine_for, session_scope
from trainq.services.jobs import service
from trainq.services.jobs.states import Device


def jobs_stored(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(Job)).scalar_one()


def test_session_scope_commits_when_the_block_ends(factory: sessionmaker[Session]) -> None:
    with session_scope(factory) as session:
        service.submit(session, TEST_PRINCIPAL, job_spec(), name=None, device=Device.auto, idempotency_key=None)
    assert jobs_stored(factory) == 1


def test_session_scope_rolls_back_when_the_block_raises(factory: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError, match="after the submit"), session_scope(factory) as session:
        service.submit(session, TEST_PRINCIPAL, job_spec(), name=None, device=Device.auto, idempotency_key=None)
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


def test_postgresql_engines_test_pooled_connections_before_use(new_postgres_database) -> None:
    engine = create_engine_for(settings_for(new_postgres_database(migrated=False)))
    try:
        assert engine.pool._pre_ping
        with engine.connect() as connection:
            assert connection.execute(text("SELECT 1")).scalar() == 1
    finally:
        engine.dispose()
