"""A batch submit with an Idempotency-Key: its retry answers with the jobs the first one
stored and stores nothing, on PostgreSQL and on SQLite, however many retries race."""

from __future__ import annotations

import copy

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.service.conftest import job_spec
from tests.support.concurrency import at_once
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.models import Job, JobBatch
from trainq.services.db.session import session_scope
from trainq.services.errors import IdempotencyKeyReused, InvalidInput, QuotaExceeded
from trainq.services.jobs import batch, service
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.states import Device
from trainq.services.spec import SEED_EXAMPLE, JobRequest
from trainq.services.tenants import keys, quotas
from trainq.services.tenants.principal import Principal

Factory = sessionmaker[Session]
Batch = list[tuple[JobRequest, str | None, Device]]


def jobs_of(names: list[str], epochs: int = 20) -> Batch:
    document = copy.deepcopy(SEED_EXAMPLE)
    document["fit"]["epochs"] = epochs
    return [(JobRequest.model_validate(document), name, Device.auto) for name in names]


def submitted(
    factory: Factory, jobs: Batch, key: str | None, principal: Principal = TEST_PRINCIPAL
) -> tuple[list[str], bool]:
    with session_scope(factory) as session:
        stored, created = batch.submit_batch(session, principal, jobs, idempotency_key=key)
        return [job.id for job in stored], created


def job_count(factory: Factory) -> int:
    with factory() as session:
        return session.execute(select(func.count()).select_from(Job)).scalar_one()


def test_a_retried_batch_with_the_same_key_returns_the_jobs_the_first_stored_in_order(factory: Factory) -> None:
    first, created = submitted(factory, jobs_of(["a", "b", "c"]), "batch-1")
    again, created_again = submitted(factory, jobs_of(["a", "b", "c"]), "batch-1")

    assert (created, created_again) == (True, False)
    assert again == first and len(set(first)) == 3
    assert job_count(factory) == 3
    with factory() as session:
        assert [service.get_job(session, TEST_PRINCIPAL, job_id).name for job_id in again] == ["a", "b", "c"]


@pytest.mark.parametrize(
    "other",
    [
        jobs_of(["a", "b", "other"]),
        jobs_of(["a", "b"]),
        jobs_of(["c", "b", "a"]),
        jobs_of(["a", "b", "c"], epochs=21),
    ],
    ids=["a-name", "fewer-jobs", "another-order", "a-spec"],
)
def test_the_key_of_a_batch_with_another_batch_is_refused_and_stores_nothing(factory: Factory, other: Batch) -> None:
    submitted(factory, jobs_of(["a", "b", "c"]), "batch-1")
    with pytest.raises(IdempotencyKeyReused) as refused:
        submitted(factory, other, "batch-1")
    assert refused.value.field == "header.Idempotency-Key"
    assert job_count(factory) == 3


def test_concurrent_batches_with_one_key_store_one_batch(factory: Factory) -> None:
    answers = at_once(lambda: submitted(factory, jobs_of(["a", "b"]), "raced"))

    assert sorted(created for _, created in answers) == [False, False, False, True]
    assert len({tuple(ids) for ids, _ in answers}) == 1
    assert job_count(factory) == 2


def test_a_batch_refused_past_the_quota_leaves_its_key_free_for_the_retry(factory: Factory) -> None:
    with session_scope(factory) as session:
        quotas.set_limits(session, TEST_PRINCIPAL.tenant, max_active_jobs=2, max_dataset_bytes=None)
    with pytest.raises(QuotaExceeded):
        submitted(factory, jobs_of(["a", "b", "c"]), "batch-1")
    with factory() as session:
        assert session.execute(select(func.count()).select_from(JobBatch)).scalar_one() == 0

    with session_scope(factory) as session:
        quotas.set_limits(session, TEST_PRINCIPAL.tenant, max_active_jobs=3, max_dataset_bytes=None)
    ids, created = submitted(factory, jobs_of(["a", "b", "c"]), "batch-1")
    assert created and len(ids) == 3
    # a replay takes no quota: the tenant is at its limit, and the retry still answers
    assert submitted(factory, jobs_of(["a", "b", "c"]), "batch-1") == (ids, False)


def test_a_replay_leaves_out_a_job_deleted_since(factory: Factory) -> None:
    ids, _ = submitted(factory, jobs_of(["a", "b", "c"]), "batch-1")
    with session_scope(factory) as session:
        service.request_cancel(session, TEST_PRINCIPAL, ids[1])
        service.delete_job(session, TEST_PRINCIPAL, ids[1])

    assert submitted(factory, jobs_of(["a", "b", "c"]), "batch-1") == ([ids[0], ids[2]], False)


def test_a_batch_s_keys_are_apart_from_single_submits_and_from_other_tenants(factory: Factory) -> None:
    with session_scope(factory) as session:
        keys.ensure_tenant(session, "other")
        single, _ = submitting.store(
            session, TEST_PRINCIPAL, job_spec(), name="a", device=Device.auto, idempotency_key="k"
        )
    ours, created = submitted(factory, jobs_of(["a"]), "k")
    theirs, created_theirs = submitted(factory, jobs_of(["a"]), "k", Principal("other"))

    assert created and created_theirs
    assert len({single.id, *ours, *theirs}) == 3
    assert job_count(factory) == 3


def test_a_batch_without_a_key_leaves_no_row_and_each_submit_stores_anew(factory: Factory) -> None:
    first, _ = submitted(factory, jobs_of(["a"]), None)
    second, _ = submitted(factory, jobs_of(["a"]), None)

    assert first != second and job_count(factory) == 2
    with factory() as session:
        assert session.execute(select(func.count()).select_from(JobBatch)).scalar_one() == 0


def test_an_empty_or_overlong_batch_key_is_refused(factory: Factory) -> None:
    for key in ("", "k" * 256):
        with pytest.raises(InvalidInput) as refused:
            submitted(factory, jobs_of(["a"]), key)
        assert refused.value.field == "header.Idempotency-Key"
    assert job_count(factory) == 0
