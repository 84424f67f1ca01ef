"""Evaluations on workers are leased as jobs are: claimed once, renewed while they run,
taken over when their worker died, and re-sent by the sweep when their message is lost.
On a real migrated SQLite database, a real storage folder and the real engine."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.support.keys import TEST_PRINCIPAL
from tests.worker.conftest import SEED
from tests.worker.test_training import submit, wait_for
from trainq.services.datasets.formats import Columns
from trainq.services.datasets.service import Upload, ingest
from trainq.services.datasets.storage import storage_for
from trainq.services.db.models import Evaluation
from trainq.services.db.session import session_scope
from trainq.services.engine import Model
from trainq.services.evaluations import evaluate
from trainq.services.evaluations import service as evaluations
from trainq.services.jobs import service as jobs
from trainq.services.leases import service as leases
from trainq.services.leases.keeper import LeaseKeeper
from trainq.services.leases.states import WorkStatus
from trainq.services.settings import Settings
from trainq.services.spec import JobSpec

Factory = sessionmaker[Session]
X = np.linspace(-1, 1, 24, dtype=np.float32).reshape(-1, 1)
Y = (3 * X - 0.5).astype(np.float32)
WEIGHTS = [np.array([[2.0]], np.float32), np.array([1.0], np.float32)]
LONG_AGO = jobs.utcnow().replace(year=2000)


def trained_job(factory: Factory) -> str:
    """The seed job, ended succeeded with known weights."""
    job_id = submit(factory, SEED)
    with session_scope(factory) as session:
        claim = jobs.claim(session, job_id, worker="trainer:1", lease_seconds=60)
        assert claim is not None
        assert jobs.succeed(session, job_id, attempt=claim.attempt, weights=WEIGHTS)
    return job_id


def uploaded(factory: Factory, settings: Settings, folder: Path) -> str:
    folder.mkdir()
    path = folder / "data.npz"
    np.savez(path, x=X, y=Y)
    upload = Upload(
        path=path,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        byte_size=path.stat().st_size,
        format="npz",
        columns=Columns(),
        name=None,
    )
    dataset, _ = ingest(
        factory, TEST_PRINCIPAL, storage_for(settings), upload, max_json_bytes=settings.max_json_dataset_bytes
    )
    return dataset.id


@pytest.fixture
def queue(factory: Factory, settings: Settings, tmp_path: Path) -> Any:
    """`queue()`: a new queued evaluation of a trained job on an uploaded dataset; its id."""
    job_id, dataset_id = trained_job(factory), uploaded(factory, settings, tmp_path / "upload")

    def create() -> str:
        with session_scope(factory) as session:
            return evaluations.create(session, TEST_PRINCIPAL, job_id, dataset_id, batch_size=8).id

    return create


def row(factory: Factory, evaluation_id: str) -> Evaluation:
    with factory() as session:
        return session.execute(select(Evaluation).where(Evaluation.id == evaluation_id)).scalar_one()


def run(factory: Factory, settings: Settings, evaluation_id: str, worker: str) -> str | None:
    return evaluate.run(factory, storage_for(settings), evaluation_id, worker=worker, settings=settings)


def engine_logs() -> dict[str, float]:
    config = JobSpec.model_validate(SEED).to_training_config()
    return Model.from_weights(config.model, config.compile, WEIGHTS).evaluate(X, Y, 8)


def test_an_evaluation_delivered_twice_at_once_runs_once(factory: Factory, settings: Settings, queue: Any) -> None:
    evaluation_id = queue()
    outcomes: list[str | None] = []
    start = threading.Barrier(2)

    def deliver(worker: str) -> None:
        start.wait()
        outcomes.append(run(factory, settings, evaluation_id, worker))

    threads = [threading.Thread(target=deliver, args=(f"w{i}:1",)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(outcomes, key=str) == [None, "succeeded"], outcomes
    done = row(factory, evaluation_id)
    assert (done.status, done.attempt, done.logs) == ("succeeded", 1, engine_logs())
    # a late third delivery finds it finished and runs nothing
    assert run(factory, settings, evaluation_id, "late:1") is None
    assert row(factory, evaluation_id).attempt == 1


def test_an_evaluation_whose_worker_died_is_taken_over_once_its_lease_expires(
    factory: Factory, settings: Settings, queue: Any
) -> None:
    evaluation_id = queue()
    with session_scope(factory) as session:
        dead = evaluations.claim(session, evaluation_id, worker="dead:1", lease_seconds=60)
    assert dead is not None and dead.attempt == 1

    # while the lease is live, a second delivery leaves it to its holder
    assert run(factory, settings, evaluation_id, "survivor:1") is None
    assert row(factory, evaluation_id).worker == "dead:1"

    with session_scope(factory) as session:
        session.execute(update(Evaluation).where(Evaluation.id == evaluation_id).values(lease_expires_at=LONG_AGO))
    assert run(factory, settings, evaluation_id, "survivor:1") == "succeeded"
    done = row(factory, evaluation_id)
    assert (done.status, done.attempt, done.worker, done.logs) == ("succeeded", 2, "survivor:1", engine_logs())
    assert done.lease_expires_at is None

    # the dead worker's attempt, should it wake up, is fenced off
    with session_scope(factory) as session:
        assert not evaluations.finish(
            session, evaluation_id, attempt=dead.attempt, status=WorkStatus.failed, error="late"
        )
    assert row(factory, evaluation_id).status == "succeeded"


def test_an_evaluation_that_lost_its_worker_max_attempts_times_ends_failed(
    factory: Factory, settings: Settings, queue: Any
) -> None:
    evaluation_id = queue()
    for attempt in range(1, settings.max_attempts + 1):
        with session_scope(factory) as session:
            claimed = evaluations.claim(
                session, evaluation_id, worker=f"dies:{attempt}", lease_seconds=60, max_attempts=settings.max_attempts
            )
            assert claimed is not None and claimed.attempt == attempt
            session.execute(update(Evaluation).where(Evaluation.id == evaluation_id).values(lease_expires_at=LONG_AGO))
    assert run(factory, settings, evaluation_id, "next:1") is None
    ended = row(factory, evaluation_id)
    assert (ended.status, ended.attempt) == ("failed", settings.max_attempts)
    assert ended.error == leases.workers_lost(settings.max_attempts)


def test_a_running_evaluation_renews_its_lease_and_learns_when_it_was_taken_over(
    factory: Factory, settings: Settings, queue: Any
) -> None:
    evaluation_id = queue()
    with session_scope(factory) as session:
        claim = evaluations.claim(session, evaluation_id, worker="slow:1", lease_seconds=settings.lease_seconds)
    assert claim is not None
    first = row(factory, evaluation_id).lease_expires_at
    assert first is not None

    def extended() -> datetime | None:
        expiry = row(factory, evaluation_id).lease_expires_at
        return expiry if expiry is not None and expiry > first else None

    keeper = LeaseKeeper(factory, Evaluation, evaluation_id, attempt=claim.attempt, settings=settings)
    keeper.start()
    try:
        wait_for(extended, "the heartbeat extends the lease")
        assert not keeper.lost.is_set()

        with session_scope(factory) as session:
            session.execute(update(Evaluation).where(Evaluation.id == evaluation_id).values(lease_expires_at=LONG_AGO))
            assert evaluations.claim(session, evaluation_id, worker="other:1", lease_seconds=60) is not None
        wait_for(keeper.lost.is_set, "the heartbeat finds the evaluation taken over")
        assert keeper.should_stop() and not keeper.cancel_requested.is_set()
    finally:
        keeper.stop()


def test_the_sweep_resends_evaluations_whose_message_was_lost_or_whose_worker_died(
    factory: Factory, settings: Settings, queue: Any
) -> None:
    lost, fresh, orphaned, alive = (queue() for _ in range(4))
    with session_scope(factory) as session:
        session.execute(
            update(Evaluation).where(Evaluation.id.in_([lost, orphaned, alive])).values(enqueued_at=LONG_AGO)
        )
        evaluations.claim(session, orphaned, worker="dead:1", lease_seconds=60)
        evaluations.claim(session, alive, worker="busy:1", lease_seconds=60)
        session.execute(update(Evaluation).where(Evaluation.id == orphaned).values(lease_expires_at=LONG_AGO))
    sent: list[str] = []

    assert sorted(evaluations.requeue_stranded(factory, sent.append, settings)) == sorted([lost, orphaned])
    assert sorted(sent) == sorted([lost, orphaned])
    resent_at = row(factory, lost).enqueued_at
    assert resent_at is not None and resent_at > LONG_AGO
    # sent just now: the next sweep leaves them alone
    assert evaluations.requeue_stranded(factory, sent.append, settings) == []
    assert row(factory, fresh).status == "queued" and row(factory, alive).worker == "busy:1"

    # the re-sent orphan is taken over by the next delivery and finishes
    assert run(factory, settings, orphaned, "survivor:1") == "succeeded"
    assert row(factory, orphaned).attempt == 2


def test_the_sweep_resends_queued_evaluations_only_as_many_as_the_shared_queue_lacks(
    factory: Factory, settings: Settings, queue: Any
) -> None:
    waiting = [queue() for _ in range(3)]
    with session_scope(factory) as session:
        session.execute(update(Evaluation).values(enqueued_at=LONG_AGO))
    sent: list[str] = []
    assert evaluations.requeue_stranded(factory, sent.append, settings, {"trainq": 3}.__getitem__) == []
    assert evaluations.requeue_stranded(factory, sent.append, settings, {"trainq": 2}.__getitem__) == waiting[:1]
    assert sent == waiting[:1]


def test_the_sweep_stops_at_a_failed_send_and_marks_only_what_it_sent(
    factory: Factory, settings: Settings, queue: Any
) -> None:
    first, second = queue(), queue()
    with session_scope(factory) as session:
        session.execute(update(Evaluation).values(enqueued_at=LONG_AGO))

    def broker_down(evaluation_id: str) -> None:
        if evaluation_id == second:
            raise ConnectionError("broker down")

    assert evaluations.requeue_stranded(factory, broker_down, settings) == [first]
    assert row(factory, second).enqueued_at == LONG_AGO
    assert evaluations.requeue_stranded(factory, lambda _: None, settings) == [second]
