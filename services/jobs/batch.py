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
from trainq.services.engine import EngineError
from trainq.services.errors import InvalidInput
from trainq.services.idempotency import hash_request, insert_once
from trainq.services.jobs.states import Device
from trainq.services.jobs.submit import NewJob, checked_spec, job_request, store_many
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
        # claimed before the jobs are stored, in the same transaction (`insert_once`); its
        # job ids are filled in once they are
        claim = dict(
            tenant=principal.tenant,
            idempotency_key=idempotency_key,
            request_hash=hash_request([job_request(new) for new in new_jobs]),
            job_ids=[],
            created_at=utcnow(),
        )
        earlier = insert_once(session, JobBatch, claim)
        if earlier is not None:
            return _jobs_of(session, earlier), False
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


def _jobs_of(session: Session, earlier: JobBatch) -> list[Job]:
    """The jobs an earlier batch stored, in its order, but those deleted since."""
    found = {job.id: job for job in session.execute(select(Job).where(Job.id.in_(earlier.job_ids))).scalars()}
    return [found[job_id] for job_id in earlier.job_ids if job_id in found]
