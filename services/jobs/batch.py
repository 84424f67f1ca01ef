"""A batch submit: up to MAX_BATCH jobs in one request, all stored or none.

Each job is checked as a submit of it alone would be (`services.jobs.submit.checked_spec`:
a model named by its id resolved, everything the engine would refuse refused, datasets
held), all in the caller's one transaction: a fault is named with the job's place in the
batch, `jobs[3].model.layers[0].units`, and the transaction stores nothing. The tenant's
quota then takes the batch whole, and the jobs are stored in one INSERT; their messages
are sent once it commits, as a single submit's is.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from trainq.services.datasets import jobs as dataset_jobs
from trainq.services.db.models import Job
from trainq.services.engine import EngineError
from trainq.services.errors import InvalidInput
from trainq.services.jobs.states import Device
from trainq.services.jobs.submit import NewJob, checked_spec, store_many
from trainq.services.spec import JobRequest
from trainq.services.tenants import quotas
from trainq.services.tenants.principal import Principal

MAX_BATCH = 1000


def submit_batch(
    session: Session, principal: Principal, batch: Sequence[tuple[JobRequest, str | None, Device]]
) -> list[Job]:
    """Submit every job of `batch` (request, name, device), in order, as `principal`'s
    tenant's (its quota counts each one)."""
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
    quotas.check_jobs(session, principal.tenant, adding=len(new_jobs))
    stored = store_many(session, principal, new_jobs)
    for job, new in zip(stored, new_jobs, strict=True):
        dataset_jobs.record_use(session, job.id, new.spec)
    return stored
