"""Deleting jobs and sweeps, on PostgreSQL and SQLite: an ended job goes with everything
recorded of it, a queued or running one (or one being evaluated) stays, a sweep goes with
its jobs once they all ended."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.service.conftest import grid_sweep, job_spec, record_one
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.models import Checkpoint, Dataset, Epoch, Evaluation, Job, JobDataset, Sweep, Weights
from trainq.services.errors import JobNotDeletable, JobNotFound, SweepNotDeletable
from trainq.services.evaluations import service as evaluations
from trainq.services.jobs import service
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.states import Device, JobStatus
from trainq.services.leases import service as leases
from trainq.services.leases.states import WorkStatus
from trainq.services.sweeps import service as sweeps

# each table keyed by a job, by the column that holds the job's id
JOB_KEYS = (Job.id, Epoch.job_id, Checkpoint.job_id, Weights.job_id, Evaluation.job_id, JobDataset.job_id)
WEIGHTS = [np.ones((1, 1), np.float32), np.zeros((1,), np.float32)]


def rows_of(session: Session, job_id: str) -> dict[str, int]:
    """How many rows each table keyed by a job holds for `job_id`."""
    return {
        key.class_.__tablename__: session.execute(select(func.count()).where(key == job_id)).scalar_one()
        for key in JOB_KEYS
    }


def a_dataset(session: Session) -> Dataset:
    """A dataset's row (its bytes are no part of a job's delete: the dataset outlives its jobs)."""
    dataset_id = str(uuid.uuid4())
    dataset = Dataset(
        tenant=TEST_PRINCIPAL.tenant,
        id=dataset_id,
        format="csv",
        rows=5,
        x_columns=1,
        y_columns=1,
        dtype="float32",
        byte_size=40,
        sha256="0" * 64,
        content_key=dataset_id.replace("-", "").ljust(64, "0"),
        summary={"columns": []},
        x_key=f"{dataset_id}/x.npy",
        y_key=f"{dataset_id}/y.npy",
    )
    session.add(dataset)
    session.flush()
    return dataset


def trained(session: Session, submit: Callable[..., Job], *, epochs: int = 3) -> Job:
    """A job run to success by a worker: its epochs and weights recorded."""
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    for epoch in range(epochs):
        record_one(
            session, job.id, attempt=claim.attempt, epoch=epoch, logs={"loss": 1.0}, wall_time=0.1, checkpoint=b"c"
        )
    assert service.succeed(session, job.id, attempt=claim.attempt, weights=WEIGHTS)
    return job


def evaluated(session: Session, job: Job, dataset: Dataset, *, finish: bool) -> Evaluation:
    evaluation = evaluations.create(session, TEST_PRINCIPAL, job.id, dataset.id, batch_size=32)
    if finish:
        claimed = evaluations.claim(session, evaluation.id, worker="w", lease_seconds=60)
        assert claimed is not None
        assert evaluations.finish(session, evaluation.id, attempt=claimed.attempt, status=WorkStatus.succeeded, logs={})
    return evaluation


def test_deleting_an_ended_job_removes_its_epochs_weights_evaluations_and_dataset_links(
    session: Session, submit: Callable[..., Job]
) -> None:
    dataset = a_dataset(session)
    job = trained(session, submit)
    evaluated(session, job, dataset, finish=True)
    session.add(JobDataset(job_id=job.id, role="training", dataset_id=dataset.id))
    session.commit()
    assert rows_of(session, job.id) == {
        "jobs": 1,
        "epochs": 3,
        "checkpoints": 0,
        "weights": 1,
        "evaluations": 1,
        "job_datasets": 1,
    }

    service.delete_job(session, TEST_PRINCIPAL, job.id)
    session.commit()

    assert set(rows_of(session, job.id).values()) == {0}
    with pytest.raises(JobNotFound):
        service.get_job(session, TEST_PRINCIPAL, job.id)
    # the dataset is its own: it stays for other jobs
    assert session.get(Dataset, dataset.id) is not None


@pytest.mark.parametrize("ending", ["failed", "cancelled"])
def test_a_failed_or_cancelled_job_is_deleted_too(session: Session, submit: Callable[..., Job], ending: str) -> None:
    job = submit()
    if ending == "cancelled":
        service.request_cancel(session, TEST_PRINCIPAL, job.id)
    else:
        claim = service.claim(session, job.id, worker="w", lease_seconds=60)
        assert claim is not None
        record_one(session, job.id, attempt=claim.attempt, epoch=0, logs={"loss": 1.0}, wall_time=0.1, checkpoint=b"c")
        assert service.fail(session, job.id, attempt=claim.attempt, error="diverged")
    session.commit()

    service.delete_job(session, TEST_PRINCIPAL, job.id)
    session.commit()

    assert set(rows_of(session, job.id).values()) == {0}


def test_a_queued_job_is_not_deleted(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    session.commit()
    with pytest.raises(JobNotDeletable, match="is queued; cancel it first"):
        service.delete_job(session, TEST_PRINCIPAL, job.id)
    session.rollback()
    assert service.get_job(session, TEST_PRINCIPAL, job.id).status == JobStatus.queued


def test_a_running_job_keeps_its_epochs_and_checkpoint(session: Session, submit: Callable[..., Job]) -> None:
    job = submit()
    claim = service.claim(session, job.id, worker="w", lease_seconds=60)
    assert claim is not None
    record_one(session, job.id, attempt=claim.attempt, epoch=0, logs={"loss": 1.0}, wall_time=0.1, checkpoint=b"c")
    session.commit()

    with pytest.raises(JobNotDeletable, match="is running; cancel it first"):
        service.delete_job(session, TEST_PRINCIPAL, job.id)
    session.rollback()

    assert rows_of(session, job.id) | {"jobs": 1} == {
        "jobs": 1,
        "epochs": 1,
        "checkpoints": 1,
        "weights": 0,
        "evaluations": 0,
        "job_datasets": 0,
    }
    # and the worker goes on owning it
    assert leases.renew(session, Job, job.id, attempt=claim.attempt, lease_seconds=60).owned


def test_a_job_being_evaluated_is_not_deleted(session: Session, submit: Callable[..., Job]) -> None:
    job = trained(session, submit)
    evaluation = evaluated(session, job, a_dataset(session), finish=False)
    session.commit()

    with pytest.raises(JobNotDeletable, match="is being evaluated"):
        service.delete_job(session, TEST_PRINCIPAL, job.id)
    session.rollback()
    assert session.get(Evaluation, evaluation.id) is not None


def test_deleting_an_unknown_job_raises_job_not_found(session: Session) -> None:
    with pytest.raises(JobNotFound):
        service.delete_job(session, TEST_PRINCIPAL, str(uuid.uuid4()))


def a_sweep(session: Session, points: int = 3) -> tuple[Sweep, list[Job]]:
    created, _ = grid_sweep(session, list(range(1, points + 1)), name="delete me")
    session.commit()
    return created.sweep, [entry.job for entry in created.jobs]


def test_deleting_a_sweep_whose_jobs_ended_removes_it_and_every_job_with_its_records(session: Session) -> None:
    sweep, stored = a_sweep(session)
    for job in stored:
        claim = service.claim(session, job.id, worker="w", lease_seconds=60)
        assert claim is not None
        record_one(session, job.id, attempt=claim.attempt, epoch=0, logs={"loss": 1.0}, wall_time=0.1, checkpoint=b"c")
        assert service.succeed(session, job.id, attempt=claim.attempt, weights=WEIGHTS)
    other = submitting.store(
        session, TEST_PRINCIPAL, job_spec(), name="not in the sweep", device=Device.auto, idempotency_key=None
    )[0]
    session.commit()
    sweep_id, job_ids, other_id = sweep.id, [job.id for job in stored], other.id

    sweeps.delete_sweep(session, TEST_PRINCIPAL, sweep_id)
    session.commit()

    assert session.get(Sweep, sweep_id) is None
    for job_id in job_ids:
        assert set(rows_of(session, job_id).values()) == {0}
    assert service.get_job(session, TEST_PRINCIPAL, other_id).status == JobStatus.queued


def test_a_sweep_with_a_job_still_queued_or_running_is_not_deleted(session: Session) -> None:
    sweep, stored = a_sweep(session)
    assert service.claim(session, stored[0].id, worker="w", lease_seconds=60) is not None
    service.request_cancel(session, TEST_PRINCIPAL, stored[1].id)
    session.commit()

    with pytest.raises(SweepNotDeletable) as refused:
        sweeps.delete_sweep(session, TEST_PRINCIPAL, sweep.id)
    session.rollback()
    assert stored[0].id in refused.value.message and stored[2].id in refused.value.message
    assert stored[1].id not in refused.value.message
    assert len(sweeps.sweep_jobs(session, sweep.id)) == 3
