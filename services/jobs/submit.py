"""Submitting a job: checked as the engine would check it, stored queued with the datasets
it reads held, its message sent once the caller's transaction commits."""

from __future__ import annotations

from sqlalchemy.orm import Session

from trainq.services.datasets import jobs as dataset_jobs
from trainq.services.db.models import Job
from trainq.services.jobs import service as jobs
from trainq.services.jobs.states import Device
from trainq.services.models import service as models
from trainq.services.spec import JobRequest, JobSpec
from trainq.services.tenants import quotas
from trainq.services.tenants.principal import Principal


def submit_job(
    session: Session,
    principal: Principal,
    request: JobRequest,
    *,
    name: str | None,
    device: Device,
    idempotency_key: str | None,
) -> tuple[Job, bool]:
    """The job, and True if created (False: it replays an earlier submit with the same key).
    It is checked first (`checked_spec`), and refused past the tenant's quota (429)."""
    spec = checked_spec(session, principal, request)
    if idempotency_key is None or not jobs.replays(session, principal, idempotency_key):
        quotas.check_jobs(session, principal.tenant, adding=1)
    job, created = jobs.submit(session, principal, spec, name=name, device=device, idempotency_key=idempotency_key)
    if created:
        dataset_jobs.record_use(session, job.id, spec)
    return job, created


def checked_spec(session: Session, principal: Principal, request: JobRequest) -> JobSpec:
    """The spec to store for `request`: a model named by its id (model.from) replaced by its
    layers and weights, everything the engine would refuse refused now, before anything is
    stored (for an uploaded dataset: its shapes, from its metadata). The model and datasets
    it names must be the principal's to see."""
    spec = models.job_spec(session, principal, request)
    dataset_jobs.check_training(session, principal, spec)
    return spec
