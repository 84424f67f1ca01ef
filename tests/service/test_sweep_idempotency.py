"""A sweep created with an Idempotency-Key: however many retries race, one sweep and one
set of jobs are stored, on PostgreSQL and on SQLite; a refusal leaves the key free."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.service.conftest import grid_sweep
from tests.support.concurrency import at_once
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.models import Job, Sweep
from trainq.services.db.session import session_scope
from trainq.services.errors import IdempotencyKeyReused, QuotaExceeded
from trainq.services.tenants import quotas

Factory = sessionmaker[Session]


def created(factory: Factory, key: str, epochs: tuple[int, ...] = (1, 2, 3)) -> tuple[str, bool]:
    with session_scope(factory) as session:
        ranking, new = grid_sweep(session, list(epochs), idempotency_key=key)
        return ranking.sweep.id, new


def counts(factory: Factory) -> tuple[int, int]:
    with factory() as session:
        sweeps, jobs = (session.execute(select(func.count()).select_from(t)).scalar_one() for t in (Sweep, Job))
        return sweeps, jobs


def test_concurrent_creates_with_one_key_store_one_sweep(factory: Factory) -> None:
    answers = at_once(lambda: created(factory, "raced"))

    assert sorted(new for _, new in answers) == [False, False, False, True]
    assert len({sweep_id for sweep_id, _ in answers}) == 1
    assert counts(factory) == (1, 3)


def test_the_key_with_another_grid_is_refused_and_a_quota_refusal_leaves_the_key_free(factory: Factory) -> None:
    with session_scope(factory) as session:
        quotas.set_limits(session, TEST_PRINCIPAL.tenant, max_active_jobs=2, max_dataset_bytes=None)
    with pytest.raises(QuotaExceeded):
        created(factory, "k")
    assert counts(factory) == (0, 0)

    with session_scope(factory) as session:
        quotas.set_limits(session, TEST_PRINCIPAL.tenant, max_active_jobs=3, max_dataset_bytes=None)
    sweep_id, new = created(factory, "k")
    assert new and created(factory, "k") == (sweep_id, False)
    with pytest.raises(IdempotencyKeyReused):
        created(factory, "k", epochs=(1, 2))
    assert counts(factory) == (1, 3)
