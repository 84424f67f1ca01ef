from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.service.conftest import expire_lease, record_one
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.models import Checkpoint, Job
from trainq.services.errors import JobNotCancellable, JobNotFound
from trainq.services.jobs import service
from trainq.services.jobs.states import JobStatus
from trainq.services.leases import service as leases
from trainq.services.leases.service import Lease


def test_a_cancelled_queued_job_never_starts(session: Session, submit: Callable[..., Job]) -> None:
    job = service.request_cancel(session, TEST_PRINCIPAL, submit().id)
    assert job.status == JobStatus.cancelled
    assert job.finished_at is not None and job.started_at is None
    assert service.claim(session, job.id, worker="w", lease_seconds=60) is None
    assert service.get_job(session, TEST_PRINCIPAL, job.id).status == JobStatus.cancelled


def test_a_cancelled_running_job_is_flagged_for_its_worker(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    assert record_one(
        session, job.id, attempt=claim.attempt, epoch=0, logs={"loss": 1.0}, wall_time=0.1, checkpoint=b"c"
    ) == Lease(True, False)
    job = service.request_cancel(session, TEST_PRINCIPAL, job.id)
    assert (job.status, job.cancel_requested) == (JobStatus.running, True)

    # the worker learns it at its next heartbeat, or as it records its next epoch
    assert leases.renew(session, Job, job.id, attempt=claim.attempt, lease_seconds=60) == Lease(True, True)
    assert record_one(
        session, job.id, attempt=claim.attempt, epoch=1, logs={"loss": 0.5}, wall_time=0.1, checkpoint=b"c"
    ) == Lease(True, True)
    assert service.cancelled(session, job.id, attempt=claim.attempt)
    job = service.get_job(session, TEST_PRINCIPAL, job.id)
    assert job.status == JobStatus.cancelled and job.finished_at is not None
    assert [e.epoch for e in service.epochs_since(session, TEST_PRINCIPAL, job.id, 0)] == [0, 1]


def test_cancelling_a_cancelled_job_again_changes_nothing(session: Session, submit: Callable[..., Job]) -> None:
    first = service.request_cancel(session, TEST_PRINCIPAL, submit().id)
    finished_at = first.finished_at
    again = service.request_cancel(session, TEST_PRINCIPAL, first.id)
    assert (again.status, again.finished_at) == (JobStatus.cancelled, finished_at)


@pytest.mark.parametrize("outcome", ["succeeded", "failed"])
def test_a_finished_job_cannot_be_cancelled(session: Session, submit: Callable[..., Job], outcome: str) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    if outcome == "succeeded":
        assert service.succeed(session, job.id, attempt=claim.attempt, weights=[np.ones((1, 1))])
    else:
        assert service.fail(session, job.id, attempt=claim.attempt, error="boom")
    with pytest.raises(JobNotCancellable, match=outcome):
        service.request_cancel(session, TEST_PRINCIPAL, job.id)
    assert service.get_job(session, TEST_PRINCIPAL, job.id).status == outcome


def test_cancelling_an_unknown_job_raises_job_not_found(session: Session) -> None:
    with pytest.raises(JobNotFound):
        service.request_cancel(session, TEST_PRINCIPAL, "no-such-job")


def test_a_cancelled_job_whose_worker_died_ends_cancelled_instead_of_resuming(
    session: Session, submit: Callable[..., Job]
) -> None:
    job = submit()
    assert service.claim(session, job.id, worker="dies", lease_seconds=60) is not None
    service.request_cancel(session, TEST_PRINCIPAL, job.id)
    expire_lease(session, job.id)
    assert service.claim(session, job.id, worker="next", lease_seconds=60) is None
    job = service.get_job(session, TEST_PRINCIPAL, job.id)
    assert (job.status, job.worker) == (JobStatus.cancelled, "dies")


def test_a_job_cancelled_when_its_dead_worker_is_replaced_keeps_its_last_checkpoint(
    session: Session, submit: Callable[..., Job]
) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="dies", lease_seconds=60)
    assert claim is not None
    assert record_one(
        session, job.id, attempt=claim.attempt, epoch=0, logs={"loss": 1.0}, wall_time=0.1, checkpoint=b"state"
    ).owned
    service.request_cancel(session, TEST_PRINCIPAL, job.id)
    expire_lease(session, job.id)
    assert service.claim(session, job.id, worker="next", lease_seconds=60) is None
    assert service.get_job(session, TEST_PRINCIPAL, job.id).status == JobStatus.cancelled
    # never resumed, but its model is exported from it
    assert session.execute(select(Checkpoint.data).where(Checkpoint.job_id == job.id)).scalar() == b"state"


def test_a_job_that_lost_its_worker_max_attempts_times_ends_failed_instead_of_going_round(
    session: Session, submit: Callable[..., Job]
) -> None:
    job = submit()
    for attempt in range(1, 4):
        claim = service.claim(session, job.id, worker=f"dies-{attempt}", lease_seconds=60, max_attempts=3)
        assert claim is not None and claim.attempt == attempt
        record_one(session, job.id, attempt=attempt, epoch=0, logs={"loss": 1.0}, wall_time=0.1, checkpoint=b"state")
        expire_lease(session, job.id)
    assert service.claim(session, job.id, worker="next", lease_seconds=60, max_attempts=3) is None
    job = service.get_job(session, TEST_PRINCIPAL, job.id)
    assert (job.status, job.attempt, job.worker) == (JobStatus.failed, 3, "dies-3")
    assert job.error == leases.workers_lost(3) and "lost on each of 3 attempts" in job.error
    assert session.execute(select(Checkpoint.data).where(Checkpoint.job_id == job.id)).scalar() == b"state"
    assert service.claim(session, job.id, worker="later", lease_seconds=60, max_attempts=3) is None


def test_a_live_lease_at_max_attempts_is_left_alone(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    assert service.claim(session, job.id, worker="only", lease_seconds=60, max_attempts=1) is not None
    assert service.claim(session, job.id, worker="dup", lease_seconds=60, max_attempts=1) is None
    assert service.get_job(session, TEST_PRINCIPAL, job.id).status == JobStatus.running


def test_cancelling_one_job_leaves_the_others_alone(session: Session, submit: Callable[..., Job]) -> None:
    others = [submit().id for _ in range(3)]
    service.request_cancel(session, TEST_PRINCIPAL, submit().id)
    assert {service.get_job(session, TEST_PRINCIPAL, job_id).status for job_id in others} == {JobStatus.queued}


def backdate_enqueue(session: Session, job_id: str, seconds: float) -> None:
    session.execute(
        update(Job)
        .where(Job.id == job_id)
        .values(enqueued_at=service.utcnow() - timedelta(seconds=seconds))
        .execution_options(synchronize_session=False)
    )
    session.expire_all()


def test_stranded_jobs_are_queued_ones_enqueued_long_ago_and_running_ones_whose_lease_expired(
    session: Session, submit: Callable[..., Job]
) -> None:
    now = service.utcnow()
    fresh_queued = submit().id
    old_queued = submit().id
    backdate_enqueue(session, old_queued, 600)
    live = submit().id
    assert service.claim(session, live, worker="alive", lease_seconds=600) is not None
    backdate_enqueue(session, live, 600)
    dead = submit().id
    assert service.claim(session, dead, worker="dead", lease_seconds=600) is not None
    backdate_enqueue(session, dead, 600)
    expire_lease(session, dead)
    finished = submit().id
    service.request_cancel(session, TEST_PRINCIPAL, finished)
    backdate_enqueue(session, finished, 600)

    stranded = leases.stranded(session, Job, queued_before=now - timedelta(seconds=60), now=service.utcnow())
    assert sorted(stranded) == sorted([old_queued, dead])
    assert fresh_queued not in stranded


def test_a_job_just_re_enqueued_is_not_stranded_again_until_the_threshold(
    session: Session, submit: Callable[..., Job]
) -> None:
    job = submit().id
    backdate_enqueue(session, job, 600)
    threshold = service.utcnow() - timedelta(seconds=60)
    assert leases.stranded(session, Job, queued_before=threshold, now=service.utcnow()) == [job]
    leases.mark_enqueued(session, Job, [job])
    assert leases.stranded(session, Job, queued_before=threshold, now=service.utcnow()) == []
    later = service.utcnow() + timedelta(seconds=1)
    assert leases.stranded(session, Job, queued_before=later, now=later) == [job]


def test_stranded_jobs_are_given_oldest_first_up_to_the_limit(session: Session, submit: Callable[..., Job]) -> None:
    ids = [submit().id for _ in range(5)]
    for job_id in ids:
        backdate_enqueue(session, job_id, 600)
    threshold = service.utcnow() - timedelta(seconds=60)
    assert leases.stranded(session, Job, queued_before=threshold, now=service.utcnow(), limit=3) == ids[:3]
