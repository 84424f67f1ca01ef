"""The state machine's tests run twice: on a real PostgreSQL and on SQLite, the embedded default.

Each test gets a database of its own, migrated to head: several tests commit from
separate sessions (two workers racing), so a rolled-back transaction would not isolate them.
A PostgreSQL copy comes from a migrated template; a SQLite one is a copy of a migrated file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import settings_for
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.models import Job, utcnow
from trainq.services.db.session import create_engine_for
from trainq.services.jobs import service
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.service import EpochRecord
from trainq.services.jobs.states import Device
from trainq.services.leases.service import Lease

if TYPE_CHECKING:
    from trainq.services.spec import JobSpec
    from trainq.services.sweeps.service import Ranking

SEED: dict[str, Any] = {
    "model": {"layers": [{"units": 1, "inputShape": [1]}]},
    "compile": {"optimizer": {"name": "sgd", "learningRate": 0.01}, "loss": "meanAbsoluteError"},
    "fit": {"epochs": 5, "batchSize": 32, "seed": 7},
    "data": {"x": [[0.1], [0.5], [0.9], [1.3], [1.7]], "y": [[1.2], [2.0], [2.8], [3.6], [4.4]]},
}


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("new_postgres_database")()
    return f"sqlite:///{request.getfixturevalue('sqlite_home') / 'trainq.db'}"


@pytest.fixture
def factory(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(settings_for(database_url))
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


@pytest.fixture
def session(factory: sessionmaker[Session]) -> Iterator[Session]:
    with factory() as session:
        yield session


def job_spec(**fit: Any) -> JobSpec:
    # imported here, not at the top: the migration tests must not need the engine
    from trainq.services.spec import JobSpec

    document = {**SEED, "fit": {**SEED["fit"], **fit}}
    return JobSpec.model_validate(document)


def grid_sweep(
    session: Session, epochs: list[int], *, name: str = "sweep", idempotency_key: str | None = None
) -> tuple[Ranking, bool]:
    """Create (uncommitted) a sweep of the seed job, one point per value of `fit.epochs`."""
    from trainq.services.sweeps import service as sweeps

    return sweeps.create_sweep(
        session,
        TEST_PRINCIPAL,
        base=job_spec(),
        grid={"fit.epochs": epochs},
        random=None,
        device=Device.auto,
        name=name,
        metric="loss",
        goal="min",
        max_points=100,
        max_inline_bytes=1 << 20,
        idempotency_key=idempotency_key,
    )


@pytest.fixture
def submit(session: Session) -> Callable[..., Job]:
    """Submit the seed job (options may change its fit) and return it."""

    def submit_job(name: str | None = None, key: str | None = None, **fit: Any) -> Job:
        job, _ = submitting.store(
            session, TEST_PRINCIPAL, job_spec(**fit), name=name, device=Device.auto, idempotency_key=key
        )
        return job

    return submit_job


def expire_lease(session: Session, job_id: str) -> None:
    """What time does to a dead worker's lease, without waiting for it."""
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(lease_expires_at=service.utcnow().replace(year=2000))
        .execution_options(synchronize_session=False)
    )
    session.expire_all()


def record_one(
    session: Session,
    job_id: str,
    *,
    attempt: int,
    epoch: int,
    logs: dict[str, float],
    wall_time: float,
    checkpoint: bytes,
) -> Lease:
    """A worker's report of one epoch and the checkpoint taken after it."""
    return service.record_epochs(
        session,
        job_id,
        attempt=attempt,
        epochs=[EpochRecord(epoch, logs, wall_time, utcnow())],
        checkpoint=(epoch + 1, checkpoint),
    )
