from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.service.conftest import expire_lease, job_spec, record_one
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.models import Checkpoint, Job, utcnow
from trainq.services.db.session import session_scope
from trainq.services.errors import JobHasNoWeights, JobNotFound
from trainq.services.jobs import service
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.service import EpochRecord
from trainq.services.jobs.states import Device, JobStatus
from trainq.services.leases import service as leases
from trainq.services.leases.service import Lease


def record(session: Session, job_id: str, attempt: int, epoch: int, loss: float = 1.0) -> bool:
    """Whether the epoch was written (the job is still this attempt's)."""
    return record_one(
        session,
        job_id,
        attempt=attempt,
        epoch=epoch,
        logs={"loss": loss},
        wall_time=0.01,
        checkpoint=f"after epoch {epoch}, attempt {attempt}".encode(),
    ).owned


def test_claim_makes_a_queued_job_running_under_a_lease(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w1@host", lease_seconds=60)
    assert claim is not None
    assert (claim.attempt, claim.device, claim.checkpoint) == (1, Device.auto, None)
    assert claim.spec == job.spec
    session.expire_all()
    job = service.get_job(session, TEST_PRINCIPAL, job.id)
    assert (job.status, job.worker, job.attempt) == (JobStatus.running, "w1@host", 1)
    assert job.lease_expires_at == claim.lease_expires_at
    assert job.started_at is not None and job.heartbeat_at is not None
    assert job.lease_expires_at > job.started_at


def test_a_job_under_a_live_lease_is_not_claimed_again(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    assert service.claim(session, job.id, worker="w1", lease_seconds=60) is not None
    assert service.claim(session, job.id, worker="w2", lease_seconds=60) is None
    assert service.get_job(session, TEST_PRINCIPAL, job.id).worker == "w1"


def test_claiming_an_unknown_job_gives_nothing(session: Session) -> None:
    assert service.claim(session, "no-such-job", worker="w", lease_seconds=60) is None


def test_two_workers_racing_for_a_job_never_both_win(factory: sessionmaker[Session]) -> None:
    """Each worker claims in its own connection and transaction, released at the same instant."""
    for _ in range(30):
        with session_scope(factory) as session:
            job, _ = submitting.store(
                session, TEST_PRINCIPAL, job_spec(), name=None, device=Device.auto, idempotency_key=None
            )
        barrier = threading.Barrier(2)
        wins: dict[str, int | None] = {}

        def race(
            worker: str, barrier: threading.Barrier = barrier, job: Job = job, wins: dict[str, int | None] = wins
        ) -> None:
            barrier.wait()
            with session_scope(factory) as session:
                claim = service.claim(session, job.id, worker=worker, lease_seconds=60)
                wins[worker] = None if claim is None else claim.attempt

        threads = [threading.Thread(target=race, args=(name,)) for name in ("a", "b")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(wins) == ["a", "b"]
        winners = [worker for worker, attempt in wins.items() if attempt is not None]
        assert len(winners) == 1, wins
        with factory() as session:
            stored = service.get_job(session, TEST_PRINCIPAL, job.id)
            assert (stored.worker, stored.attempt) == (winners[0], 1)


def test_an_expired_lease_is_taken_over_with_the_checkpoint(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    first = service.claim(session, job.id, worker="dies", lease_seconds=60)
    assert first is not None
    assert record(session, job.id, first.attempt, 0) and record(session, job.id, first.attempt, 1)
    expire_lease(session, job.id)

    second = service.claim(session, job.id, worker="survives", lease_seconds=60)
    assert second is not None
    assert second.attempt == 2
    assert second.checkpoint == b"after epoch 1, attempt 1"
    job = service.get_job(session, TEST_PRINCIPAL, job.id)
    assert (job.status, job.worker, job.attempt, job.epochs_done) == (JobStatus.running, "survives", 2, 2)


def test_a_stale_attempt_is_fenced_off_after_a_takeover(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    stale = service.claim(session, job.id, worker="slow", lease_seconds=60)
    assert stale is not None
    expire_lease(session, job.id)
    fresh = service.claim(session, job.id, worker="fast", lease_seconds=60)
    assert fresh is not None

    assert not record(session, job.id, stale.attempt, 0, loss=99.0)
    assert leases.renew(session, Job, job.id, attempt=stale.attempt, lease_seconds=60) == Lease(False, False)
    assert not service.succeed(session, job.id, attempt=stale.attempt, weights=[np.zeros((1, 1))])
    assert not service.fail(session, job.id, attempt=stale.attempt, error="late")
    assert not service.cancelled(session, job.id, attempt=stale.attempt)
    assert service.epochs_since(session, TEST_PRINCIPAL, job.id, 0) == []
    assert session.get(Checkpoint, job.id) is None

    assert record(session, job.id, fresh.attempt, 0, loss=0.5)
    assert leases.renew(session, Job, job.id, attempt=fresh.attempt, lease_seconds=60) == Lease(True, False)
    assert service.succeed(session, job.id, attempt=fresh.attempt, weights=[np.ones((1, 1))])
    job = service.get_job(session, TEST_PRINCIPAL, job.id)
    assert (job.status, job.worker, job.error) == (JobStatus.succeeded, "fast", None)


def test_renewing_the_lease_moves_its_expiry(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=1)
    assert claim is not None
    assert leases.renew(session, Job, job.id, attempt=claim.attempt, lease_seconds=3600) == Lease(True, False)
    job = service.get_job(session, TEST_PRINCIPAL, job.id)
    assert job.lease_expires_at is not None
    assert (job.lease_expires_at - claim.lease_expires_at).total_seconds() > 3000


def test_epochs_are_recorded_and_read_from_an_epoch_on(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    for epoch in range(4):
        assert record_one(
            session,
            job.id,
            attempt=claim.attempt,
            epoch=epoch,
            logs={"loss": 1.0 / (epoch + 1), "val_loss": 2.0 / (epoch + 1)},
            wall_time=0.1 * epoch,
            checkpoint=bytes([epoch]),
        ) == Lease(owned=True, cancel_requested=False)
    epochs = service.epochs_since(session, TEST_PRINCIPAL, job.id, 2)
    assert [(e.epoch, e.logs, e.wall_time) for e in epochs] == [
        (2, {"loss": 1 / 3, "val_loss": 2 / 3}, pytest.approx(0.2)),
        (3, {"loss": 0.25, "val_loss": 0.5}, pytest.approx(0.3)),
    ]
    assert all(e.recorded_at.tzinfo is not None for e in epochs)
    assert len(service.epochs_since(session, TEST_PRINCIPAL, job.id, 0)) == 4
    assert service.epochs_since(session, TEST_PRINCIPAL, job.id, 4) == []
    job = service.get_job(session, TEST_PRINCIPAL, job.id)
    assert (job.epochs_done, job.latest_logs) == (4, {"loss": 0.25, "val_loss": 0.5})
    checkpoint = session.get(Checkpoint, job.id)
    assert checkpoint is not None and (checkpoint.epoch, checkpoint.data) == (4, bytes([3]))
    # only the latest checkpoint is kept
    assert len(session.execute(select(Checkpoint)).all()) == 1


def test_an_epoch_run_again_by_a_resumed_attempt_overwrites_it(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    first = service.claim(session, job.id, worker="a", lease_seconds=60)
    assert first is not None
    assert record(session, job.id, first.attempt, 0, loss=3.0)
    assert record(session, job.id, first.attempt, 1, loss=2.0)
    expire_lease(session, job.id)
    second = service.claim(session, job.id, worker="b", lease_seconds=60)
    assert second is not None
    assert record(session, job.id, second.attempt, 1, loss=1.5)
    assert record(session, job.id, second.attempt, 1, loss=1.25)
    assert [(e.epoch, e.logs["loss"]) for e in service.epochs_since(session, TEST_PRINCIPAL, job.id, 0)] == [
        (0, 3.0),
        (1, 1.25),
    ]


def test_epochs_of_an_unknown_job_raise_job_not_found(session: Session) -> None:
    with pytest.raises(JobNotFound):
        service.epochs_since(session, TEST_PRINCIPAL, "no-such-job", 0)


def test_succeed_stores_the_weights_that_final_weights_returns(
    factory: sessionmaker[Session], submit: Callable[..., Job], session: Session
) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    assert record(session, job.id, claim.attempt, 0)
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=shape).astype(np.float32) for shape in [(3, 4), (4,), (4, 1), (1,)] * 3]
    assert service.succeed(session, job.id, attempt=claim.attempt, weights=weights)
    session.commit()

    with factory() as reader:
        stored = service.final_weights(reader, TEST_PRINCIPAL, job.id)
        assert [w.shape for w in stored] == [w.shape for w in weights]
        assert all(w.dtype == np.float32 for w in stored)
        for got, want in zip(stored, weights, strict=True):
            np.testing.assert_array_equal(got, want)
        job = service.get_job(reader, TEST_PRINCIPAL, job.id)
        assert job.status == JobStatus.succeeded
        assert job.started_at is not None and job.finished_at is not None and job.finished_at >= job.started_at
        assert job.lease_expires_at is None
        assert reader.get(Checkpoint, job.id) is None


def test_weights_of_a_job_that_has_none_raise_job_has_no_weights(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    with pytest.raises(JobHasNoWeights, match="queued"):
        service.final_weights(session, TEST_PRINCIPAL, job.id)
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    with pytest.raises(JobHasNoWeights, match="running"):
        service.final_weights(session, TEST_PRINCIPAL, job.id)
    with pytest.raises(JobNotFound):
        service.final_weights(session, TEST_PRINCIPAL, "no-such-job")


def test_fail_ends_the_job_with_its_error_keeping_its_epochs(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    assert record(session, job.id, claim.attempt, 0)
    assert service.fail(session, job.id, attempt=claim.attempt, error="loss became NaN at epoch 1")
    job = service.get_job(session, TEST_PRINCIPAL, job.id)
    assert (job.status, job.error) == (JobStatus.failed, "loss became NaN at epoch 1")
    assert job.finished_at is not None
    assert len(service.epochs_since(session, TEST_PRINCIPAL, job.id, 0)) == 1
    assert service.claim(session, job.id, worker="w2", lease_seconds=60) is None
    with pytest.raises(JobHasNoWeights):
        service.final_weights(session, TEST_PRINCIPAL, job.id)


def test_a_finished_job_accepts_no_more_writes(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    assert service.succeed(session, job.id, attempt=claim.attempt, weights=[np.ones((1, 1))])
    assert not record(session, job.id, claim.attempt, 5)
    assert not service.fail(session, job.id, attempt=claim.attempt, error="x")
    assert not service.succeed(session, job.id, attempt=claim.attempt, weights=[np.zeros((1, 1))])
    assert leases.renew(session, Job, job.id, attempt=claim.attempt, lease_seconds=60).owned is False
    np.testing.assert_array_equal(service.final_weights(session, TEST_PRINCIPAL, job.id)[0], np.ones((1, 1)))


def test_a_metric_that_is_not_finite_is_stored_as_null(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    logs = {"loss": 0.5, "val_loss": float("nan"), "val_mse": float("inf")}
    assert record_one(session, job.id, attempt=claim.attempt, epoch=0, logs=logs, wall_time=0.1, checkpoint=b"c").owned
    session.commit()
    session.expire_all()
    expected = {"loss": 0.5, "val_loss": None, "val_mse": None}
    assert service.epochs_since(session, TEST_PRINCIPAL, job.id, 0)[0].logs == expected
    assert service.get_job(session, TEST_PRINCIPAL, job.id).latest_logs == expected


def test_a_log_value_given_as_a_numpy_scalar_is_stored_as_a_number(
    session: Session, submit: Callable[..., Job]
) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    # not the floats the type says: what an engine on another array library might hand over
    logs: dict[str, Any] = {"loss": np.float32(0.5), "mse": np.float64("nan")}
    assert record_one(session, job.id, attempt=claim.attempt, epoch=0, logs=logs, wall_time=0.1, checkpoint=b"c").owned
    session.commit()
    session.expire_all()
    assert service.epochs_since(session, TEST_PRINCIPAL, job.id, 0)[0].logs == {"loss": 0.5, "mse": None}


def test_a_report_writes_many_epochs_at_once_and_a_rerun_replaces_them(
    session: Session, submit: Callable[..., Job]
) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    batch = [EpochRecord(epoch, {"loss": 1.0 / (epoch + 1)}, 0.01, utcnow()) for epoch in range(2500)]
    assert service.record_epochs(session, job.id, attempt=claim.attempt, epochs=batch) == Lease(True, False)
    assert [e.epoch for e in service.epochs_since(session, TEST_PRINCIPAL, job.id, 0)] == list(range(2500))
    assert session.get(Checkpoint, job.id) is None  # no checkpoint was given
    assert service.get_job(session, TEST_PRINCIPAL, job.id).epochs_done == 2500

    rerun = [EpochRecord(epoch, {"loss": 7.0}, 0.02, utcnow()) for epoch in range(2498, 2501)]
    assert service.record_epochs(session, job.id, attempt=claim.attempt, epochs=rerun, checkpoint=(2501, b"s")).owned
    epochs = service.epochs_since(session, TEST_PRINCIPAL, job.id, 2497)
    assert [(e.epoch, e.logs["loss"]) for e in epochs] == [(2497, 1 / 2498), (2498, 7.0), (2499, 7.0), (2500, 7.0)]
    checkpoint = session.get(Checkpoint, job.id)
    assert checkpoint is not None and (checkpoint.epoch, checkpoint.data) == (2501, b"s")


def test_a_takeover_forgets_the_epochs_recorded_after_the_last_checkpoint(
    session: Session, submit: Callable[..., Job]
) -> None:
    job = submit()
    dead = service.claim(session, job.id, worker="dies", lease_seconds=60)
    assert dead is not None
    epochs = [EpochRecord(epoch, {"loss": 1.0}, 0.01, utcnow()) for epoch in range(6)]
    service.record_epochs(session, job.id, attempt=1, epochs=epochs[:3], checkpoint=(3, b"after 3"))
    service.record_epochs(session, job.id, attempt=1, epochs=epochs[3:])
    expire_lease(session, job.id)

    taken = service.claim(session, job.id, worker="next", lease_seconds=60)
    assert taken is not None and taken.checkpoint == b"after 3"
    service.rewind_to_checkpoint(session, job.id, attempt=taken.attempt)

    assert [e.epoch for e in service.epochs_since(session, TEST_PRINCIPAL, job.id, 0)] == [0, 1, 2]
    assert service.get_job(session, TEST_PRINCIPAL, job.id).epochs_done == 3


def test_a_takeover_without_a_checkpoint_starts_the_history_again(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    assert service.claim(session, job.id, worker="dies", lease_seconds=60) is not None
    service.record_epochs(session, job.id, attempt=1, epochs=[EpochRecord(0, {"loss": 1.0}, 0.01, utcnow())])
    expire_lease(session, job.id)

    taken = service.claim(session, job.id, worker="next", lease_seconds=60)
    assert taken is not None and taken.checkpoint is None
    service.rewind_to_checkpoint(session, job.id, attempt=taken.attempt)

    assert service.epochs_since(session, TEST_PRINCIPAL, job.id, 0) == []
    assert service.get_job(session, TEST_PRINCIPAL, job.id).epochs_done == 0
