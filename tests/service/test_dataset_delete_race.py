"""A dataset deleted at the very moment a job (or an evaluation) naming it is submitted:
whichever comes second sees the first, and neither ends in a foreign-key error (a 500).

Each race is played in threads on a real PostgreSQL, one side holding its transaction
open until the other is seen waiting on a lock (pg_stat_activity), then committing."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import settings_for
from tests.service.conftest import SEED
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.datasets import jobs as dataset_jobs
from trainq.services.datasets import service as datasets
from trainq.services.datasets.storage import FolderStorage
from trainq.services.db.models import Dataset, Evaluation, Job, JobDataset, utcnow
from trainq.services.db.session import create_engine_for, session_scope
from trainq.services.errors import DatasetDeleted, DatasetInUse, InvalidInput
from trainq.services.evaluations import service as evaluations
from trainq.services.jobs import service as jobs
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.states import Device
from trainq.services.spec import JobSpec

Factory = sessionmaker[Session]
LOCK_WAIT_SECONDS = 10
# the datasets here are rows alone: removing their bytes (none) after a delete commits does nothing
NO_BYTES = FolderStorage(Path("/nonexistent/trainq-test-storage"))


@pytest.fixture
def pg(new_postgres_database: Callable[..., str]) -> Iterator[Factory]:
    engine = create_engine_for(settings_for(new_postgres_database()))
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def stored_dataset(session: Session) -> str:
    """A dataset row of 5 rows x 1 column (its bytes are not needed to submit or delete)."""
    dataset_id = str(uuid.uuid4())
    session.add(
        Dataset(
            tenant=TEST_PRINCIPAL.tenant,
            id=dataset_id,
            name=None,
            format="npy",
            rows=5,
            x_columns=1,
            y_columns=1,
            dtype="float32",
            byte_size=40,
            sha256="0" * 64,
            content_key=uuid.uuid4().hex,
            summary={"columns": []},
            x_key=f"{dataset_id}/x.npy",
            y_key=f"{dataset_id}/y.npy",
            created_at=utcnow(),
        )
    )
    session.flush()
    return dataset_id


def spec_on(dataset_id: str, validation_id: str | None = None) -> JobSpec:
    data = {"datasetId": dataset_id} | ({"validationDatasetId": validation_id} if validation_id else {})
    return JobSpec.model_validate({**SEED, "data": data})


def submit_on(session: Session, spec: JobSpec) -> str:
    """What POST /v1/jobs does in its transaction."""
    dataset_jobs.check_training(session, TEST_PRINCIPAL, spec)
    job, _ = submitting.store(session, TEST_PRINCIPAL, spec, name=None, device=Device.auto, idempotency_key=None)
    dataset_jobs.record_use(session, job.id, spec)
    return job.id


def in_thread(work: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `work` in a thread; its result, or the exception it raised, lands in the list."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(work())
        except Exception as error:  # the outcome under test
            outcome.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, outcome


def wait_until_a_session_waits_on_a_lock(factory: Factory) -> None:
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with factory() as probe:
        while not probe.execute(query).scalar_one():
            probe.rollback()  # a fresh snapshot of the activity view
            if time.monotonic() > deadline:
                raise AssertionError(f"no session waited on a lock within {LOCK_WAIT_SECONDS}s")
            time.sleep(0.01)


def count(factory: Factory, model: type) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def trained_job(session: Session) -> str:
    job, _ = submitting.store(
        session, TEST_PRINCIPAL, JobSpec.model_validate(SEED), name=None, device=Device.auto, idempotency_key=None
    )
    claim = jobs.claim(session, job.id, worker="trainer:1", lease_seconds=60)
    assert claim is not None
    assert jobs.succeed(session, job.id, attempt=claim.attempt, weights=[np.ones((1, 1)), np.zeros(1)])
    return job.id


def test_a_job_submitted_while_its_dataset_is_being_deleted_waits_and_is_refused_naming_the_field(pg: Factory) -> None:
    with session_scope(pg) as session:
        dataset_id = stored_dataset(session)
    with pg() as deleting:
        datasets.delete_dataset(deleting, TEST_PRINCIPAL, NO_BYTES, dataset_id)
        thread, outcome = in_thread(lambda: _submit_in_scope(pg, spec_on(dataset_id)))
        wait_until_a_session_waits_on_a_lock(pg)
        deleting.commit()
    thread.join(LOCK_WAIT_SECONDS)
    [error] = outcome
    assert isinstance(error, InvalidInput), repr(error)
    assert (error.field, error.status_code) == ("data.datasetId", 422)
    assert count(pg, Job) == 0 and count(pg, Dataset) == 0


def test_a_dataset_deleted_while_a_job_on_it_is_being_submitted_waits_and_is_refused_as_in_use(pg: Factory) -> None:
    with session_scope(pg) as session:
        dataset_id = stored_dataset(session)
    spec = spec_on(dataset_id)
    with pg() as session:
        # the submit has checked the dataset, and not yet stored the job that names it
        dataset_jobs.check_training(session, TEST_PRINCIPAL, spec)
        thread, outcome = in_thread(lambda: _delete_in_scope(pg, dataset_id))
        wait_until_a_session_waits_on_a_lock(pg)
        job, _ = submitting.store(session, TEST_PRINCIPAL, spec, name=None, device=Device.auto, idempotency_key=None)
        dataset_jobs.record_use(session, job.id, spec)
        session.commit()
    thread.join(LOCK_WAIT_SECONDS)
    [error] = outcome
    assert isinstance(error, DatasetInUse) and job.id in str(error), repr(error)
    assert count(pg, Dataset) == 1 and count(pg, JobDataset) == 1


def test_an_evaluation_asked_for_while_its_dataset_is_being_deleted_waits_and_is_refused(pg: Factory) -> None:
    with session_scope(pg) as session:
        dataset_id, job_id = stored_dataset(session), trained_job(session)
    with pg() as deleting:
        datasets.delete_dataset(deleting, TEST_PRINCIPAL, NO_BYTES, dataset_id)
        thread, outcome = in_thread(lambda: _evaluate_in_scope(pg, job_id, dataset_id))
        wait_until_a_session_waits_on_a_lock(pg)
        deleting.commit()
    thread.join(LOCK_WAIT_SECONDS)
    [error] = outcome
    assert isinstance(error, InvalidInput) and error.field == "datasetId", repr(error)
    assert count(pg, Evaluation) == 0


def test_many_submits_racing_one_delete_each_see_a_dataset_or_none(pg: Factory) -> None:
    with session_scope(pg) as session:
        dataset_id = stored_dataset(session)
    start = threading.Barrier(9)

    def after_start(work: Callable[[], Any]) -> Callable[[], Any]:
        return lambda: (start.wait(), work())[1]

    racers = [in_thread(after_start(lambda: _submit_in_scope(pg, spec_on(dataset_id)))) for _ in range(8)]
    deleter = in_thread(after_start(lambda: _delete_in_scope(pg, dataset_id)))
    for thread, _ in [*racers, deleter]:
        thread.join(LOCK_WAIT_SECONDS)
    submitted = [outcome[0] for _, outcome in racers]
    [deleted] = deleter[1]
    stored = [job_id for job_id in submitted if isinstance(job_id, str)]
    refused = [error for error in submitted if not isinstance(error, str)]
    assert all(isinstance(error, InvalidInput) and error.field == "data.datasetId" for error in refused), refused
    if isinstance(deleted, DatasetInUse):
        # the delete came after at least one submit and saw it: the dataset stays under every stored job
        assert stored and count(pg, Dataset) == 1
    else:
        # the delete went first: every submit after it was refused
        assert deleted is None and stored == [] and count(pg, Dataset) == 0, (deleted, stored)
    assert count(pg, Job) == count(pg, JobDataset) == len(stored)


@pytest.mark.parametrize("missing", ["training", "validation"])
def test_a_job_stored_on_a_dataset_that_is_gone_is_a_conflict_naming_its_field(factory: Factory, missing: str) -> None:
    """Without the hold of check_training (a path that skipped it), the foreign key still
    answers a 409 naming the field, not a 500."""
    with session_scope(factory) as session:
        present = stored_dataset(session)
    gone = str(uuid.uuid4())
    spec = spec_on(gone, present) if missing == "training" else spec_on(present, gone)
    with pytest.raises(DatasetDeleted) as raised, session_scope(factory) as session:
        job, _ = submitting.store(session, TEST_PRINCIPAL, spec, name=None, device=Device.auto, idempotency_key=None)
        dataset_jobs.record_use(session, job.id, spec)
    assert raised.value.field == {"training": "data.datasetId", "validation": "data.validationDatasetId"}[missing]
    assert raised.value.status_code == 409 and gone in str(raised.value)
    assert count(factory, Job) == 0


def _submit_in_scope(factory: Factory, spec: JobSpec) -> str:
    with session_scope(factory) as session:
        return submit_on(session, spec)


def _delete_in_scope(factory: Factory, dataset_id: str) -> None:
    with session_scope(factory) as session:
        datasets.delete_dataset(session, TEST_PRINCIPAL, NO_BYTES, dataset_id)


def _evaluate_in_scope(factory: Factory, job_id: str, dataset_id: str) -> str:
    with session_scope(factory) as session:
        return evaluations.create(session, TEST_PRINCIPAL, job_id, dataset_id, batch_size=2).id
