"""A real `trainq worker` process on the embedded broker (Celery's SQLAlchemy transport
on SQLite): each job runs once however often it is sent, and the worker's requeue sweep
sends the jobs whose message was lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.orm import sessionmaker

from tests.support.keys import TEST_PRINCIPAL
from tests.support.processes import Processes, wait_for
from tests.worker.conftest import SEED
from trainq.services.db.models import Epoch, Job
from trainq.services.db.session import create_engine_for, session_scope
from trainq.services.jobs import service as jobs
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.states import Device
from trainq.services.placement import route
from trainq.services.queue import create_celery, send_job
from trainq.services.settings import Settings
from trainq.services.spec import JobSpec


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    started = Processes(tmp_path / "logs")
    yield started
    started.stop_all()


def test_a_worker_runs_each_job_once_and_resends_the_jobs_whose_message_was_lost(
    sqlite_home: Path, processes: Processes
) -> None:
    tmp_path = sqlite_home
    env = {
        "TRAINQ_HOME": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'trainq.db'}",
        "TRAINQ_REQUEUE_AFTER_SECONDS": "1",
        "TRAINQ_HEARTBEAT_SECONDS": "0.2",
    }
    settings = Settings(**env)  # type: ignore[arg-type]  # the worker's own env: strings, which pydantic converts
    engine = create_engine_for(settings)
    factory = sessionmaker(engine, expire_on_commit=False)
    celery = create_celery(settings)
    with session_scope(factory) as session:
        sent_twice, sent_once, lost = (
            submitting.store(
                session,
                TEST_PRINCIPAL,
                JobSpec.model_validate(SEED),
                name=None,
                device=Device.cpu,
                idempotency_key=None,
            )[0].id
            for _ in range(3)
        )
        session.execute(update(Job).where(Job.id == lost).values(enqueued_at=jobs.utcnow().replace(year=2000)))
    for job_id in (sent_twice, sent_once, sent_twice):
        send_job(celery, job_id, route(Device.cpu, in_sweep=False))

    processes.trainq("worker", ["worker", "--concurrency", "1", "--hostname", "w1@test"], env)

    def finished() -> list[Job] | None:
        with factory() as session:
            rows = list(session.execute(select(Job)).scalars())
        return rows if all(row.status == "succeeded" for row in rows) else None

    def state() -> object:
        with factory() as session:
            return session.execute(select(Job.id, Job.status, Job.attempt)).all()

    rows = wait_for(finished, timeout=60, what="the three jobs succeeded", processes=processes, state=state)
    assert {row.id for row in rows} == {sent_twice, sent_once, lost}
    assert all(row.attempt == 1 and row.worker is not None and row.worker.startswith("w1@test:") for row in rows)
    with factory() as session:
        assert session.execute(select(func.count()).select_from(Epoch)).scalar_one() == 3 * 5
    # every message taken is gone from broker.db, not kept forever as an invisible row
    broker = create_engine(f"sqlite:///{tmp_path / 'broker.db'}")

    def messages_kept() -> int:
        with broker.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM kombu_message")).scalar_one())

    wait_for(
        lambda: messages_kept() == 0,
        timeout=10,
        what="broker.db holds no message",
        processes=processes,
        state=messages_kept,
    )
    broker.dispose()
    celery.close()
    engine.dispose()
