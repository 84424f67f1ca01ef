from __future__ import annotations

from collections.abc import Callable
from datetime import UTC
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from tests.service.conftest import job_spec
from tests.support.concurrency import at_once
from tests.support.keys import TEST_PRINCIPAL
from trainq.services import paging
from trainq.services.db.models import NAME_MAX_LENGTH, Job
from trainq.services.db.session import session_scope
from trainq.services.errors import IdempotencyKeyReused, InvalidInput, JobNotFound
from trainq.services.jobs import service
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.states import Device, JobStatus
from trainq.services.spec import JobSpec


def job_count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(Job)).scalar_one()


def test_submit_stores_a_queued_job_whose_spec_reads_back_equal(factory: sessionmaker[Session]) -> None:
    spec = job_spec(epochs=7)
    with session_scope(factory) as session:
        job, created = submitting.store(
            session, TEST_PRINCIPAL, spec, name="seed", device=Device.cpu, idempotency_key=None
        )
    assert created

    with factory() as session:
        stored = service.get_job(session, TEST_PRINCIPAL, job.id)
        assert stored.status == JobStatus.queued
        assert (stored.name, stored.device, stored.attempt, stored.epochs_total, stored.epochs_done) == (
            "seed",
            "cpu",
            0,
            7,
            0,
        )
        assert JobSpec.model_validate(stored.spec) == spec
        assert stored.created_at.tzinfo is not None and stored.created_at.utcoffset() == UTC.utcoffset(None)
        assert stored.enqueued_at == stored.created_at
        assert stored.started_at is None and stored.finished_at is None and stored.worker is None


def test_get_job_of_an_unknown_id_raises_job_not_found(session: Session) -> None:
    with pytest.raises(JobNotFound):
        service.get_job(session, TEST_PRINCIPAL, "00000000-0000-0000-0000-000000000000")


def test_a_replayed_idempotency_key_returns_the_first_job(session: Session) -> None:
    first, created = submitting.store(
        session, TEST_PRINCIPAL, job_spec(), name="a", device=Device.auto, idempotency_key="key-1"
    )
    again, created_again = submitting.store(
        session, TEST_PRINCIPAL, job_spec(), name="a", device=Device.auto, idempotency_key="key-1"
    )
    assert (created, created_again) == (True, False)
    assert again.id == first.id
    assert job_count(session) == 1


@pytest.mark.parametrize(
    "change",
    [
        dict(spec=job_spec(epochs=6)),
        dict(name="another name"),
        dict(device=Device.gpu),
    ],
    ids=["spec", "name", "device"],
)
def test_an_idempotency_key_reused_with_another_request_is_refused(session: Session, change: dict[str, Any]) -> None:
    request: dict[str, Any] = dict(spec=job_spec(), name="a", device=Device.auto)
    submitting.store(session, TEST_PRINCIPAL, **request, idempotency_key="key-1")
    with pytest.raises(IdempotencyKeyReused):
        submitting.store(session, TEST_PRINCIPAL, **{**request, **change}, idempotency_key="key-1")
    assert job_count(session) == 1


def test_concurrent_submits_with_one_idempotency_key_store_one_job(factory: sessionmaker[Session]) -> None:
    def submit() -> str:
        with session_scope(factory) as session:
            job, _ = submitting.store(
                session, TEST_PRINCIPAL, job_spec(), name=None, device=Device.auto, idempotency_key="same"
            )
            return job.id

    assert len(set(at_once(submit))) == 1
    with factory() as session:
        assert job_count(session) == 1


def test_jobs_are_listed_newest_first(session: Session, submit: Callable[..., Job]) -> None:
    ids = [submit(name=str(i)).id for i in range(5)]
    jobs, cursor = service.list_jobs(session, TEST_PRINCIPAL, status=None, cursor=None, limit=10)
    assert [job.id for job in jobs] == ids[::-1]
    assert cursor is None


def test_listing_filters_by_status(session: Session, submit: Callable[..., Job]) -> None:
    queued = [submit().id for _ in range(3)]
    running = submit().id
    assert service.claim(session, running, worker="w", lease_seconds=60) is not None
    cancelled = service.request_cancel(session, TEST_PRINCIPAL, submit().id).id

    def listed(status: JobStatus) -> list[str]:
        return [job.id for job in service.list_jobs(session, TEST_PRINCIPAL, status=status, cursor=None, limit=10)[0]]

    assert listed(JobStatus.queued) == queued[::-1]
    assert listed(JobStatus.running) == [running]
    assert listed(JobStatus.cancelled) == [cancelled]
    assert listed(JobStatus.succeeded) == []


@pytest.mark.parametrize("same_instant", [False, True], ids=["distinct-times", "one-instant"])
def test_cursor_pages_cover_every_job_once_in_order(
    session: Session, submit: Callable[..., Job], same_instant: bool
) -> None:
    for _ in range(23):
        submit()
    if same_instant:
        # ties on created_at are broken by id, so a page boundary inside a tie loses nothing
        session.execute(update(Job).values(created_at=service.utcnow()).execution_options(synchronize_session=False))
        session.expire_all()
    everything, _ = service.list_jobs(session, TEST_PRINCIPAL, status=None, cursor=None, limit=100)

    pages: list[list[str]] = []
    cursor = None
    while True:
        jobs, cursor = service.list_jobs(session, TEST_PRINCIPAL, status=None, cursor=cursor, limit=5)
        pages.append([job.id for job in jobs])
        if cursor is None:
            break
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
    assert [job_id for page in pages for job_id in page] == [job.id for job in everything]


def test_a_job_submitted_between_pages_does_not_shift_the_next_page(
    session: Session, submit: Callable[..., Job]
) -> None:
    old = [submit().id for _ in range(4)]
    first, cursor = service.list_jobs(session, TEST_PRINCIPAL, status=None, cursor=None, limit=2)
    submit()
    second, _ = service.list_jobs(session, TEST_PRINCIPAL, status=None, cursor=cursor, limit=2)
    assert [job.id for job in first + second] == old[::-1]


@pytest.mark.parametrize("cursor", ["garbage", "", "W10", "WyJub3QgYSBkYXRlIiwgIngiXQ"])
def test_a_cursor_not_handed_out_is_refused_naming_the_field(session: Session, cursor: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        service.list_jobs(session, TEST_PRINCIPAL, status=None, cursor=cursor, limit=5)
    assert raised.value.field == "query.cursor"


@pytest.mark.parametrize("limit", [0, -1, paging.MAX_PAGE + 1])
def test_a_page_size_out_of_range_is_refused(session: Session, limit: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        service.list_jobs(session, TEST_PRINCIPAL, status=None, cursor=None, limit=limit)
    assert raised.value.field == "query.limit"


@pytest.mark.parametrize(
    ("name", "key", "field"),
    [
        ("x" * (NAME_MAX_LENGTH + 1), None, "name"),
        (None, "k" * 256, "header.Idempotency-Key"),
        (None, "", "header.Idempotency-Key"),
    ],
    ids=["long-name", "long-key", "empty-key"],
)
def test_a_name_or_key_too_long_for_its_column_is_refused_before_storing(
    session: Session, name: str | None, key: str | None, field: str
) -> None:
    with pytest.raises(InvalidInput) as raised:
        submitting.store(session, TEST_PRINCIPAL, job_spec(), name=name, device=Device.auto, idempotency_key=key)
    assert raised.value.field == field
    assert job_count(session) == 0
