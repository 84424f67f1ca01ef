"""run_job on a real migrated SQLite database with the real engine."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from tests.support.keys import TEST_PRINCIPAL
from tests.worker.conftest import SEED
from trainq.services.db.models import Checkpoint, Epoch, Job
from trainq.services.db.session import session_scope
from trainq.services.engine import EpochEnd, fit
from trainq.services.jobs import service as jobs
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.service import EpochRecord
from trainq.services.jobs.states import Device, JobStatus
from trainq.services.placement import RESUMED_PRIORITY, SINGLE_PRIORITY, SWEEP_PRIORITY, Route
from trainq.services.settings import Settings
from trainq.services.spec import JobSpec
from trainq.services.training import Outcome, requeue_stranded, run_job

T = TypeVar("T")
Factory = sessionmaker[Session]


def document(**fit: Any) -> dict[str, Any]:
    return {**SEED, "fit": {**SEED["fit"], **fit}}


def long_document() -> dict[str, Any]:
    """Five million one-row batches (half a minute and more): long enough to cancel or take
    over mid-fit on a fast machine, even after a first report five seconds in. Every test of
    it ends the fit early."""
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (50, 1)).round(3)
    return {
        **SEED,
        "fit": {"epochs": 100_000, "batchSize": 1, "seed": 1},
        "data": {"x": x.tolist(), "y": (2 * x + 1).tolist()},
    }


def submit(factory: Factory, spec: dict[str, Any]) -> str:
    with session_scope(factory) as session:
        job, _ = submitting.store(
            session, TEST_PRINCIPAL, JobSpec.model_validate(spec), name=None, device=Device.cpu, idempotency_key=None
        )
        return job.id


def job_row(factory: Factory, job_id: str) -> Job:
    with factory() as session:
        return session.execute(select(Job).where(Job.id == job_id)).scalar_one()


def epoch_rows(factory: Factory, job_id: str) -> list[Epoch]:
    with factory() as session:
        return list(session.execute(select(Epoch).where(Epoch.job_id == job_id).order_by(Epoch.epoch)).scalars())


def wait_for(condition: Callable[[], T], what: str, timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(0.01)
    return value


def in_thread(target: Callable[[], Outcome]) -> tuple[threading.Thread, list[Outcome]]:
    outcomes: list[Outcome] = []
    thread = threading.Thread(target=lambda: outcomes.append(target()), daemon=True)
    thread.start()
    return thread, outcomes


def engine_fit(spec: dict[str, Any]) -> Any:
    parsed = JobSpec.model_validate(spec)
    x, y, _ = parsed.arrays()
    return fit(parsed.to_training_config(), x, y)


def test_a_job_records_every_epoch_and_ends_with_the_engines_weights(factory: Factory, settings: Settings) -> None:
    job_id = submit(factory, document())

    outcome = run_job(factory, job_id, worker="host:1", settings=settings)

    assert outcome == Outcome(job_id, JobStatus.succeeded)
    expected = engine_fit(document())
    job = job_row(factory, job_id)
    assert (job.status, job.attempt, job.worker, job.epochs_done) == ("succeeded", 1, "host:1", 5)
    assert job.started_at is not None and job.finished_at is not None
    epochs = epoch_rows(factory, job_id)
    assert [e.epoch for e in epochs] == [0, 1, 2, 3, 4]
    assert [e.logs["loss"] for e in epochs] == expected.history["loss"]
    assert job.latest_logs == epochs[-1].logs
    assert all(e.wall_time > 0 for e in epochs)
    with factory() as session:
        weights = jobs.final_weights(session, TEST_PRINCIPAL, job_id)
        assert session.get(Checkpoint, job_id) is None  # a finished job is never resumed
    for got, want in zip(weights, expected.weights, strict=True):
        np.testing.assert_array_equal(got, want)


def test_a_duplicate_delivery_of_a_running_job_does_nothing(factory: Factory, settings: Settings) -> None:
    job_id = submit(factory, document())
    with session_scope(factory) as session:
        jobs.claim(session, job_id, worker="other:2", lease_seconds=60)

    assert run_job(factory, job_id, worker="host:1", settings=settings) == Outcome(job_id, None)

    job = job_row(factory, job_id)
    assert (job.status, job.attempt, job.worker, job.epochs_done) == ("running", 1, "other:2", 0)
    assert epoch_rows(factory, job_id) == []


def test_a_late_delivery_of_a_finished_job_does_nothing(factory: Factory, settings: Settings) -> None:
    job_id = submit(factory, document())
    run_job(factory, job_id, worker="host:1", settings=settings)
    finished = job_row(factory, job_id)

    assert run_job(factory, job_id, worker="host:2", settings=settings) == Outcome(job_id, None)

    job = job_row(factory, job_id)
    assert (job.status, job.attempt, job.worker, job.finished_at) == ("succeeded", 1, "host:1", finished.finished_at)


@pytest.mark.parametrize("heartbeat_seconds", [None, 60.0], ids=["heartbeat 0.05 s", "heartbeat 60 s"])
def test_cancelling_a_running_job_stops_it_at_the_next_batch(
    factory: Factory, settings: Settings, heartbeat_seconds: float | None
) -> None:
    # the worker learns of the cancel at its next heartbeat or as it reports its epochs,
    # whichever comes first: with a 60 s heartbeat, its next report
    if heartbeat_seconds is not None:
        settings = settings.model_copy(update={"heartbeat_seconds": heartbeat_seconds, "lease_seconds": 600.0})
    job_id = submit(factory, long_document())
    thread, outcomes = in_thread(lambda: run_job(factory, job_id, worker="host:1", settings=settings))
    wait_for(lambda: job_row(factory, job_id).epochs_done >= 2, "two epochs are recorded")

    with session_scope(factory) as session:
        jobs.request_cancel(session, TEST_PRINCIPAL, job_id)
    asked = time.monotonic()
    thread.join(10)

    assert time.monotonic() - asked < 2.0
    assert outcomes == [Outcome(job_id, JobStatus.cancelled)]
    job = job_row(factory, job_id)
    assert job.status == "cancelled" and job.cancel_requested
    assert 2 <= job.epochs_done < 100_000
    assert [e.epoch for e in epoch_rows(factory, job_id)] == list(range(job.epochs_done))


def test_a_job_cancelled_between_reports_writes_the_epochs_it_held_once(
    factory: Factory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # reports 5 s apart, heartbeats 0.05 s apart: the cancel arrives while epochs are held
    settings = settings.model_copy(update={"report_interval_seconds": 5.0})
    # every write of epoch rows, the reports' and the one that ends the job
    write_epochs = jobs.write_epochs
    reported: list[list[int]] = []

    def counting(session: Session, job_id: str, epochs: list[EpochRecord]) -> None:
        reported.append([e.epoch for e in epochs])
        write_epochs(session, job_id, epochs)

    monkeypatch.setattr(jobs, "write_epochs", counting)
    job_id = submit(factory, long_document())
    thread, outcomes = in_thread(lambda: run_job(factory, job_id, worker="host:1", settings=settings))
    wait_for(lambda: job_row(factory, job_id).epochs_done >= 1, "a first report")

    with session_scope(factory) as session:
        jobs.request_cancel(session, TEST_PRINCIPAL, job_id)
    thread.join(10)

    assert outcomes == [Outcome(job_id, JobStatus.cancelled)]
    assert len(reported) >= 2 and len(reported[0]) > 1 and reported[-1], reported
    job = job_row(factory, job_id)
    assert [epoch for report in reported for epoch in report] == list(range(job.epochs_done))
    assert [e.epoch for e in epoch_rows(factory, job_id)] == list(range(job.epochs_done))


def test_a_job_whose_worker_died_is_taken_over_and_resumed_from_its_checkpoint(
    factory: Factory, settings: Settings
) -> None:
    spec = document(epochs=5, shuffle=True)
    job_id = submit(factory, spec)
    # the first worker trains three epochs, records them with a checkpoint, and dies
    with session_scope(factory) as session:
        dead = jobs.claim(session, job_id, worker="dead:1", lease_seconds=60)
    assert dead is not None
    ended: list[EpochEnd] = []
    parsed = JobSpec.model_validate(document(epochs=3, shuffle=True))
    fit(parsed.to_training_config(), *parsed.arrays()[:2], on_epoch_end=ended.append)
    checkpoint = ended[-1].take_checkpoint()
    with session_scope(factory) as session:
        jobs.record_epochs(
            session,
            job_id,
            attempt=dead.attempt,
            epochs=[EpochRecord(end.epoch, end.logs, 0.5, jobs.utcnow()) for end in ended],
            checkpoint=(checkpoint.epoch, checkpoint.to_bytes()),
        )
    first_run = {e.epoch: e.recorded_at for e in epoch_rows(factory, job_id)}
    expire_lease(factory, job_id)

    outcome = run_job(factory, job_id, worker="host:2", settings=settings)

    assert outcome == Outcome(job_id, JobStatus.succeeded)
    job = job_row(factory, job_id)
    assert (job.attempt, job.worker, job.epochs_done) == (2, "host:2", 5)
    epochs = epoch_rows(factory, job_id)
    assert [e.epoch for e in epochs] == [0, 1, 2, 3, 4]
    # the three epochs the dead worker finished were not trained again
    assert {e.epoch: e.recorded_at for e in epochs[:3]} == first_run
    assert_as_uninterrupted(factory, job_id, spec)


class Killed(BaseException):
    """The worker's process dies here: nothing after it runs, nothing held is written."""


def test_a_worker_killed_between_a_checkpoint_and_its_next_report_is_resumed_bit_for_bit(
    factory: Factory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = document(epochs=12, shuffle=True)
    job_id = submit(factory, spec)
    # every epoch is reported (interval 0); epoch 3's report carries a checkpoint, the next
    # two do not, and the worker dies as it reports epoch 6
    settings = settings.model_copy(update={"report_interval_seconds": 0.0, "checkpoint_interval_seconds": 0.0})
    record_epochs = jobs.record_epochs
    reports: list[tuple[int, int | None]] = []

    def dies_after_a_checkpoint(
        session: Session, job_id: str, *, epochs: list[EpochRecord], checkpoint: Any = None, **kwargs: Any
    ) -> jobs.Lease:
        [epoch] = [e.epoch for e in epochs]
        if epoch == 6:
            raise Killed()
        checkpoint = checkpoint if epoch == 3 else None
        reports.append((epoch, checkpoint and checkpoint[0]))
        return record_epochs(session, job_id, epochs=epochs, checkpoint=checkpoint, **kwargs)

    monkeypatch.setattr(jobs, "record_epochs", dies_after_a_checkpoint)
    with pytest.raises(Killed):
        run_job(factory, job_id, worker="killed:1", settings=settings)
    monkeypatch.setattr(jobs, "record_epochs", record_epochs)

    assert reports == [(0, None), (1, None), (2, None), (3, 4), (4, None), (5, None)]
    with factory() as session:
        checkpoint = session.get(Checkpoint, job_id)
        assert checkpoint is not None and checkpoint.epoch == 4
    assert [e.epoch for e in epoch_rows(factory, job_id)] == list(range(6))  # two epochs past the checkpoint
    expire_lease(factory, job_id)

    assert run_job(factory, job_id, worker="host:2", settings=settings) == Outcome(job_id, JobStatus.succeeded)

    assert job_row(factory, job_id).attempt == 2
    assert_as_uninterrupted(factory, job_id, spec)


def expire_lease(factory: Factory, job_id: str) -> None:
    with session_scope(factory) as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=jobs.utcnow().replace(year=2000)))


def assert_as_uninterrupted(factory: Factory, job_id: str, spec: dict[str, Any]) -> None:
    """Every epoch recorded once, with the logs and final weights of one uninterrupted fit."""
    expected = engine_fit(spec)
    epochs = epoch_rows(factory, job_id)
    assert [e.epoch for e in epochs] == list(range(len(expected.epochs)))
    assert [e.logs["loss"] for e in epochs] == expected.history["loss"]
    with factory() as session:
        for got, want in zip(jobs.final_weights(session, TEST_PRINCIPAL, job_id), expected.weights, strict=True):
            np.testing.assert_array_equal(got, want)


def test_a_worker_whose_job_was_taken_over_stops_without_writing(factory: Factory, settings: Settings) -> None:
    job_id = submit(factory, long_document())
    thread, outcomes = in_thread(lambda: run_job(factory, job_id, worker="slow:1", settings=settings))
    wait_for(lambda: job_row(factory, job_id).epochs_done >= 1, "an epoch is recorded")
    with session_scope(factory) as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=jobs.utcnow().replace(year=2000)))
        usurper = jobs.claim(session, job_id, worker="new:2", lease_seconds=60)
    assert usurper is not None and usurper.attempt == 2

    thread.join(10)

    assert outcomes == [Outcome(job_id, None, taken_over=True)]
    job = job_row(factory, job_id)
    assert (job.status, job.attempt, job.worker) == ("running", 2, "new:2")


def test_a_database_failure_mid_fit_leaves_the_job_to_its_lease_and_a_takeover_finishes_it(
    factory: Factory, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = document(epochs=5)
    job_id = submit(factory, spec)
    settings = settings.model_copy(update={"report_interval_seconds": 0.0})
    record_epochs = jobs.record_epochs
    calls = [0]

    def failing_third(*args: Any, **kwargs: Any) -> jobs.Lease:
        calls[0] += 1
        if calls[0] == 3:
            raise OperationalError("UPDATE jobs", {}, Exception("server closed the connection unexpectedly"))
        return record_epochs(*args, **kwargs)

    monkeypatch.setattr(jobs, "record_epochs", failing_third)
    outcome = run_job(factory, job_id, worker="host:1", settings=settings)

    assert outcome.status is None and "server closed the connection" in (outcome.error or "")
    job = job_row(factory, job_id)
    assert (job.status, job.attempt, job.epochs_done, job.error) == ("running", 1, 2, None)
    with session_scope(factory) as session:
        session.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=jobs.utcnow().replace(year=2000)))
    assert run_job(factory, job_id, worker="host:2", settings=settings) == Outcome(job_id, JobStatus.succeeded)
    job = job_row(factory, job_id)
    assert (job.attempt, job.epochs_done) == (2, 5)
    assert [e.logs["loss"] for e in epoch_rows(factory, job_id)] == engine_fit(spec).history["loss"]


def test_a_diverging_fit_fails_the_job_naming_the_epoch(factory: Factory, settings: Settings) -> None:
    spec = document()
    spec["compile"] = {"optimizer": {"name": "sgd", "learningRate": 1e30}, "loss": "meanSquaredError"}
    job_id = submit(factory, spec)

    outcome = run_job(factory, job_id, worker="host:1", settings=settings)

    assert outcome.status is JobStatus.failed
    job = job_row(factory, job_id)
    assert job.status == "failed"
    assert job.error is not None and job.error.startswith("diverged at epoch ")
    assert job.error == outcome.error
    with factory() as session, pytest.raises(jobs.JobHasNoWeights):
        jobs.final_weights(session, TEST_PRINCIPAL, job_id)


def test_the_sweep_resends_queued_jobs_whose_message_is_lost_and_jobs_whose_worker_died(
    factory: Factory, settings: Settings
) -> None:
    long_ago = jobs.utcnow().replace(year=2000)
    lost, fresh, orphaned, alive = (submit(factory, document()) for _ in range(4))
    with session_scope(factory) as session:
        session.execute(update(Job).where(Job.id.in_([lost, orphaned, alive])).values(enqueued_at=long_ago))
        jobs.claim(session, orphaned, worker="dead:1", lease_seconds=60)
        jobs.claim(session, alive, worker="busy:1", lease_seconds=60)
        session.execute(update(Job).where(Job.id == orphaned).values(lease_expires_at=long_ago))
    sent: list[str] = []

    routes: dict[str, Route] = {}

    def enqueue(job_id: str, route: Route) -> None:
        routes[job_id] = route
        sent.append(job_id)

    assert sorted(requeue_stranded(factory, enqueue, settings)) == sorted([lost, orphaned])
    # each to its own queue (device cpu); the job whose worker died ahead of every other
    assert routes == {lost: Route("trainq.cpu", SINGLE_PRIORITY), orphaned: Route("trainq.cpu", RESUMED_PRIORITY)}
    assert RESUMED_PRIORITY < SINGLE_PRIORITY < SWEEP_PRIORITY  # kombu's Redis takes 0 first

    assert sorted(sent) == sorted([lost, orphaned])
    resent_at = job_row(factory, lost).enqueued_at
    assert resent_at is not None and resent_at > long_ago
    # sent just now: the next sweep leaves them alone
    assert requeue_stranded(factory, enqueue, settings) == []
    assert job_row(factory, fresh).status == "queued"


def test_the_sweep_resends_no_queued_job_whose_queue_holds_every_message_and_only_as_many_as_are_missing(
    factory: Factory, settings: Settings
) -> None:
    long_ago = jobs.utcnow().replace(year=2000)
    waiting = [submit(factory, document()) for _ in range(5)]  # a backlog: queued, sent long ago
    orphaned = submit(factory, document())
    with session_scope(factory) as session:
        session.execute(update(Job).where(Job.id.in_([*waiting, orphaned])).values(enqueued_at=long_ago))
        jobs.claim(session, orphaned, worker="dead:1", lease_seconds=60)
        session.execute(update(Job).where(Job.id == orphaned).values(lease_expires_at=long_ago))
    broker = {"trainq.cpu": 5, "trainq": 0}
    sent: list[str] = []

    def enqueue(job_id: str, route: Route) -> None:
        sent.append(job_id)

    # every waiting job's message is on its queue: only the dead worker's job goes again
    assert requeue_stranded(factory, enqueue, settings, messages_waiting=broker.__getitem__) == [orphaned]
    # the broker lost two of them: the two oldest are sent again, and no more
    with session_scope(factory) as session:
        session.execute(update(Job).where(Job.id.in_(waiting)).values(enqueued_at=long_ago))
    broker["trainq.cpu"] = 4  # three of the five, and the dead worker's job sent again
    assert requeue_stranded(factory, enqueue, settings, messages_waiting=broker.__getitem__) == waiting[:2]
    assert sent == [orphaned, *waiting[:2]]


def test_a_job_whose_worker_died_is_sent_again_once_and_again_only_if_its_queue_lost_the_message(
    factory: Factory, settings: Settings
) -> None:
    long_ago = jobs.utcnow().replace(year=2000)
    waiting = [submit(factory, document()) for _ in range(3)]  # a backlog, its messages all there
    orphaned = submit(factory, document())
    with session_scope(factory) as session:
        session.execute(update(Job).where(Job.id.in_([*waiting, orphaned])).values(enqueued_at=long_ago))
        jobs.claim(session, orphaned, worker="dead:1", lease_seconds=60)
        session.execute(update(Job).where(Job.id == orphaned).values(lease_expires_at=long_ago))
    broker = {"trainq.cpu": 3, "trainq": 0}

    def sweep_after_requeue_after() -> list[str]:
        # as if requeue_after_seconds had passed since the last send (its worker died before)
        with session_scope(factory) as session:
            session.execute(
                update(Job)
                .where(Job.id.in_([*waiting, orphaned]), Job.enqueued_at > long_ago)
                .values(enqueued_at=long_ago.replace(year=2001))
            )
        return requeue_stranded(factory, lambda job_id, route: None, settings, messages_waiting=broker.__getitem__)

    assert sweep_after_requeue_after() == [orphaned]  # at once: its worker died
    broker["trainq.cpu"] = 4  # its message waits behind busy workers: no duplicate
    assert sweep_after_requeue_after() == []
    assert sweep_after_requeue_after() == []
    broker["trainq.cpu"] = 3  # the broker lost a message: the resumed job's goes again first
    assert sweep_after_requeue_after() == [orphaned]
    broker["trainq.cpu"] = 0  # all lost (Redis restarted empty): each job goes again once
    assert sorted(sweep_after_requeue_after()) == sorted([orphaned, *waiting])
