"""The workers registry: each worker records itself at start and renews a heartbeat.

A worker is online while its heartbeat is younger than `lost_after` seconds, lost after
that (it died, or cannot reach the database), and stopped once it shut down cleanly.
What a worker is running is read from the jobs it holds (`jobs.worker` starts with its
node name), so training never writes to this table.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from trainq.services.db.models import Job, Worker, utcnow
from trainq.services.db.upsert import insert
from trainq.services.jobs.states import Device, JobStatus
from trainq.services.tenants.principal import Principal
from trainq.services.workers.device import WorkerDevice


class WorkerStatus(StrEnum):
    # its heartbeat is recent
    online = "online"
    # silent for longer than TRAINQ_WORKER_LOST_AFTER_SECONDS without saying goodbye
    lost = "lost"
    # it shut down cleanly
    stopped = "stopped"


@dataclass(frozen=True)
class WorkerState:
    worker: Worker
    status: WorkerStatus
    current_jobs: list[str]  # the jobs it holds now (one per pool process)


def register(session: Session, *, name: str, host: str, pid: int, device: WorkerDevice, concurrency: int) -> None:
    """Record the worker as started now; a worker restarted under the same name takes its row over."""
    now = utcnow()
    values = dict(
        name=name,
        host=host,
        pid=pid,
        device_kind=device.kind.value,
        device_name=device.name[:255],
        memory_bytes=device.memory_bytes,
        array_library=device.array_library,
        concurrency=concurrency,
        started_at=now,
        heartbeat_at=now,
        stopped_at=None,
    )
    statement = insert(session, Worker).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["name"], set_={key: statement.excluded[key] for key in values if key != "name"}
        )
    )


def heartbeat(session: Session, name: str) -> bool:
    """Renew the worker's heartbeat; False when its row is gone (record it again)."""
    renewed = session.execute(
        update(Worker)
        .where(Worker.name == name)
        .values(heartbeat_at=utcnow(), stopped_at=None)
        .returning(Worker.name)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    return renewed is not None


def stopped(session: Session, name: str) -> None:
    session.execute(
        update(Worker)
        .where(Worker.name == name)
        .values(stopped_at=utcnow())
        .execution_options(synchronize_session=False)
    )


def list_workers(session: Session, principal: Principal, *, lost_after: float) -> list[WorkerState]:
    """Every worker that ever recorded itself, online ones first, then by name; the jobs
    each runs, those `principal` may see (the workers are shared, the jobs are not)."""
    now = utcnow()
    running = session.execute(
        select(Job.worker, Job.id).where(Job.status == JobStatus.running.value, principal.visible(Job.tenant))
    ).all()
    jobs_of: dict[str, list[str]] = {}
    for holder, job_id in running:
        # jobs.worker is "<node name>:<pool process id>"
        jobs_of.setdefault((holder or "").rpartition(":")[0], []).append(job_id)
    states = [
        WorkerState(worker, status_of(worker, now, lost_after), sorted(jobs_of.get(worker.name, [])))
        for worker in session.execute(select(Worker)).scalars()
    ]
    return sorted(states, key=lambda state: (state.status is not WorkerStatus.online, state.worker.name))


def status_of(worker: Worker, now: datetime, lost_after: float) -> WorkerStatus:
    if worker.stopped_at is not None:
        return WorkerStatus.stopped
    if worker.heartbeat_at < now - timedelta(seconds=lost_after):
        return WorkerStatus.lost
    return WorkerStatus.online


def online_kinds(session: Session, *, lost_after: float) -> set[Device]:
    """The device kinds at least one online worker serves."""
    recent = utcnow() - timedelta(seconds=lost_after)
    kinds = session.execute(
        select(Worker.device_kind).where(Worker.stopped_at.is_(None), Worker.heartbeat_at >= recent).distinct()
    ).scalars()
    return {Device(kind) for kind in kinds}


class OnlineKinds:
    """`online_kinds`, read at most once every `max_age` seconds: the API answers every submit
    and every read of a job with the reason a queued job waits, and a query per request for
    a set that changes as workers come and go (their heartbeats are seconds apart) was a
    sixth of a submit's time. Shared by the API's threads; a race reads it twice, no worse."""

    def __init__(self, *, lost_after: float, max_age: float = 1.0) -> None:
        self.lost_after = lost_after
        self.max_age = max_age
        self._kinds: frozenset[Device] | None = None
        self._read_at = 0.0

    def __call__(self, session: Session) -> set[Device]:
        now = time.monotonic()
        if self._kinds is None or now - self._read_at > self.max_age:
            self._kinds = frozenset(online_kinds(session, lost_after=self.lost_after))
            self._read_at = now
        return set(self._kinds)


def waiting_reason(job: Job, online: Iterable[Device]) -> str | None:
    """Why a queued job waits, when no online worker can take it; None otherwise."""
    if job.status != JobStatus.queued.value:
        return None
    online = set(online)
    if not online:
        return "no worker online"
    if job.device == Device.gpu.value and Device.gpu not in online:
        return "no GPU worker online"
    if job.device == Device.cpu.value and Device.cpu not in online:
        return "no CPU worker online"
    return None
