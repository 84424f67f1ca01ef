"""A batch submit: up to MAX_BATCH jobs in one request, all stored or none.

Each job is checked as a submit of it alone would be (`services.jobs.submit.checked_spec`:
a model named by its id resolved, everything the engine would refuse refused, datasets
held), all in the caller's one transaction: a fault is named with the job's place in the
batch, `jobs[3].model.layers[0].units`, and the transaction stores nothing. The tenant's
quota then takes the batch whole, and the jobs are stored in one INSERT; their messages
are sent once it commits, as a single submit's is.

With an Idempotency-Key, a retry of the batch (the same jobs, however formatted) answers
with the jobs the first one stored and stores nothing; the key with another batch is
refused (409). A batch's keys are their own: a single submit's key never replays a batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trainq.services.datasets import jobs as dataset_jobs
from trainq.services.db.models import Job, JobBatch, utcnow
from trainq.services.db.upsert import insert
from trainq.services.engine import EngineError
from trainq.services.errors import IdempotencyKeyReused, InvalidInput
from trainq.services.jobs.states import Device
from trainq.services.jobs.submit import (
    NewJob,
    check_idempotency_key,
    checked_spec,
    hash_request,
    job_request,
    store_many,
)
from trainq.services.spec import JobRequest
from trainq.services.tenants import quotas
from trainq.services.tenants.principal import Principal

MAX_BATCH = 1000


def submit_batch(
    session: Session,
    principal: Principal,
    batch: Sequence[tuple[JobRequest, str | None, Device]],
    *,
    idempotency_key: str | None = None,
) -> tuple[list[Job], bool]:
    """Submit every job of `batch` (request, name, device), in order, as `principal`'s
    tenant's (its quota counts each one); True if stored, False if it replays an earlier
    batch with the same `idempotency_key` (whose jobs it returns, those not deleted since)."""
    if not 1 <= len(batch) <= MAX_BATCH:
        raise InvalidInput("jobs", f"between 1 and {MAX_BATCH} jobs in a batch, not {len(batch)}")
    new_jobs = []
    for index, (request, name, device) in enumerate(batch):
        try:
            new_jobs.append(NewJob(checked_spec(session, principal, request), name, Device(device)))
        except InvalidInput as error:
            raise error.inside(f"jobs[{index}]") from None
        except EngineError as error:
            raise InvalidInput.of(error).inside(f"jobs[{index}]") from None
    if idempotency_key is not None:
        check_idempotency_key(idempotency_key)
        request_hash = hash_request([job_request(new) for new in new_jobs])
        if not _claim(session, principal, idempotency_key, request_hash):
            return _replay(session, principal, idempotency_key, request_hash), False
    quotas.check_jobs(session, principal.tenant, adding=len(new_jobs))
    stored = store_many(session, principal, new_jobs)
    for job, new in zip(stored, new_jobs, strict=True):
        dataset_jobs.record_use(session, job.id, new.spec)
    if idempotency_key is not None:
        session.execute(
            update(JobBatch)
            .where(JobBatch.tenant == principal.tenant, JobBatch.idempotency_key == idempotency_key)
            .values(job_ids=[job.id for job in stored])
        )
    return stored, True


def _claim(session: Session, principal: Principal, idempotency_key: str, request_hash: str) -> bool:
    """Whether this is the first batch with the key. The row is written before the jobs, in
    the same transaction: a second batch racing with the key waits on it (PostgreSQL's
    unique index, SQLite's one writer) and then replays what the first stored, or stores
    its own if the first rolled back."""
    claimed = session.execute(
        insert(session, JobBatch)
        .values(
            tenant=principal.tenant,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            job_ids=[],
            created_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["tenant", "idempotency_key"])
        .returning(JobBatch.tenant)
    ).scalar_one_or_none()
    return claimed is not None


def _replay(session: Session, principal: Principal, idempotency_key: str, request_hash: str) -> list[Job]:
    first = session.execute(
        select(JobBatch).where(JobBatch.tenant == principal.tenant, JobBatch.idempotency_key == idempotency_key)
    ).scalar_one()
    if first.request_hash != request_hash:
        raise IdempotencyKeyReused(idempotency_key)
    found = {job.id: job for job in session.execute(select(Job).where(Job.id.in_(first.job_ids))).scalars()}
    return [found[job_id] for job_id in first.job_ids if job_id in found]
