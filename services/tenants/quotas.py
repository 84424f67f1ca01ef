"""A tenant's quotas: its queued + running jobs, and the bytes of its stored datasets.

A limit of None is no limit (the default). A submit or an upload past a limit is refused
with `QuotaExceeded` (429, with Retry-After). Where a limit is set, the tenant's row is
held until the transaction ends, so two submits racing for its last place cannot both
take it; a tenant without limits takes no lock.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import BindParameter, Select, String, bindparam, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from trainq.services.db.models import Dataset, Job, Tenant
from trainq.services.db.session import core
from trainq.services.errors import QuotaExceeded, TenantNotFound
from trainq.services.jobs.states import JobStatus
from trainq.services.tenants.principal import tenant_name

# when to try again: a job slot frees when one of its jobs ends; dataset bytes only when
# one of its datasets is deleted
JOBS_RETRY_AFTER_SECONDS = 30
DATASETS_RETRY_AFTER_SECONDS = 3600
ACTIVE = (JobStatus.queued.value, JobStatus.running.value)


# Built once, the tenant a parameter: a submit checks its quota, and constructing these
# statements anew cost it more CPU than running them.
_TENANT: BindParameter[str] = bindparam("tenant", type_=String())
_ACTIVE_JOBS = select(func.count()).select_from(Job).where(Job.tenant == _TENANT, Job.status.in_(ACTIVE))
_DATASET_BYTES = select(func.coalesce(func.sum(Dataset.byte_size), 0)).where(Dataset.tenant == _TENANT)
_LIMITS = {
    limit.key: select(limit).where(Tenant.name == _TENANT)
    for limit in (Tenant.max_active_jobs, Tenant.max_dataset_bytes)
}


def check_jobs(session: Session, tenant: str, adding: int) -> None:
    """Refuse `adding` more queued jobs past the tenant's max_active_jobs."""
    _check(
        session,
        tenant,
        Tenant.max_active_jobs,
        _ACTIVE_JOBS,
        adding,
        lambda limit, active: (
            f"tenant {tenant} has {active} queued or running jobs; its limit of {limit} "
            f"(max_active_jobs) leaves room for {max(limit - active, 0)}, not {adding}"
        ),
        retry_after=JOBS_RETRY_AFTER_SECONDS,
    )


def check_dataset_bytes(session: Session, tenant: str, adding: int) -> None:
    """Refuse a dataset of `adding` bytes past the tenant's max_dataset_bytes."""
    _check(
        session,
        tenant,
        Tenant.max_dataset_bytes,
        _DATASET_BYTES,
        adding,
        lambda limit, stored: (
            f"tenant {tenant} stores {stored} bytes of datasets; {adding} more would pass its "
            f"limit of {limit} (max_dataset_bytes): delete a dataset first"
        ),
        retry_after=DATASETS_RETRY_AFTER_SECONDS,
    )


def _check(
    session: Session,
    tenant: str,
    limit_of: InstrumentedAttribute[int | None],
    used: Select[int],
    adding: int,
    refusal: Callable[[int, int], str],
    *,
    retry_after: int,
) -> None:
    """Refuse `adding` more past the tenant's limit in `limit_of` (None: no limit), `used`
    (of the parameter `tenant`) counting what it holds now; `refusal(limit, used)` says why."""
    limit = core(session).execute(_LIMITS[limit_of.key], {"tenant": tenant}).scalar_one_or_none()
    if limit is None:
        return
    _hold(session, tenant)
    now = core(session).execute(used, {"tenant": tenant}).scalar_one()
    if now + adding > limit:
        raise QuotaExceeded(limit_of.key, refusal(limit, now), retry_after=retry_after)


def set_limits(session: Session, tenant: str, *, max_active_jobs: int | None, max_dataset_bytes: int | None) -> Tenant:
    """Set both limits of an existing tenant (None: no limit)."""
    row = session.get(Tenant, tenant_name(tenant))
    if row is None:
        raise TenantNotFound(tenant)
    row.max_active_jobs = max_active_jobs
    row.max_dataset_bytes = max_dataset_bytes
    session.flush()
    return row


def list_tenants(session: Session) -> list[Tenant]:
    return list(session.execute(select(Tenant).order_by(Tenant.name)).scalars())


def _hold(session: Session, tenant: str) -> None:
    """The tenant's row, locked until the transaction ends (as `datasets.service.hold_dataset`)."""
    if session.get_bind().dialect.name == "sqlite":
        # no row locks: a write that changes nothing takes the database's one write lock
        session.execute(update(Tenant).where(Tenant.name == tenant).values(name=Tenant.name))
    else:
        session.execute(select(Tenant.name).where(Tenant.name == tenant).with_for_update())
