"""The job state machine: claim, record epochs, succeed, fail, cancel, delete (a submit
stores a job queued: `services.jobs.submit`).

    queued ──claim──▶ running ──succeed──▶ succeeded
      │                │  ▲  ├──fail─────▶ failed
      │                │  │  └──cancelled─▶ cancelled   (the worker saw cancel_requested)
      │                └──┘ claim after the lease expired: taken over, attempt + 1,
      │  ◀──hand_back──┘    resumed from the last checkpoint
      │                     (its worker is stopping: queued again at once, attempt kept)
      └──request_cancel──▶ cancelled                     (never starts)

A job is leased work: the lease itself (claim, renew, finish, the requeue sweep, the
fencing by `attempt`) is `services.leases`'s; what is the job's own is here: its devices,
cancelling, its epochs, checkpoint and weights. Every function takes the session first and
never commits: the API's request dependency or the worker's `session_scope` owns the
transaction. A worker's writes carry the `attempt` its claim returned: once another worker
has taken the job over, the old one's writes are refused (the functions answer False) and
it must stop.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from numbers import Real
from typing import Any

import msgspec
import numpy as np
from sqlalchemy import bindparam, delete, func, select, text
from sqlalchemy import insert as sql_insert
from sqlalchemy.orm import Session, defer

from trainq.services import paging
from trainq.services.db.models import (
    Checkpoint,
    Epoch,
    Evaluation,
    Job,
    Weights,
    utcnow,
)
from trainq.services.db.session import core
from trainq.services.db.upsert import insert
from trainq.services.errors import (
    JobHasNoWeights,
    JobNotCancellable,
    JobNotDeletable,
    JobNotFound,
)
from trainq.services.jobs.states import Device, JobStatus
from trainq.services.leases import service as leases
from trainq.services.leases.service import Lease
from trainq.services.leases.states import ACTIVE, FINISHED
from trainq.services.logs import finite_or_none, json_logs
from trainq.services.tenants.principal import Principal


@dataclass(frozen=True)
class Claim:
    """What a worker gets when it wins a job."""

    job_id: str
    attempt: int  # pass it back with every write: it proves the job is still this worker's
    spec: dict[str, Any]  # the JobSpec dumped by alias: `JobSpec.model_validate(claim.spec)`
    device: Device
    lease_expires_at: datetime
    checkpoint: bytes | None  # an earlier attempt's last checkpoint: resume from it


# --- the API side ---------------------------------------------------------------------


def get_job(session: Session, principal: Principal, job_id: str) -> Job:
    """The job, if `principal` may see it; JobNotFound otherwise, as if there were none."""
    job = session.get(Job, job_id)
    if job is None or not principal.sees(job.tenant):
        raise JobNotFound(job_id)
    return job


def exists(session: Session, principal: Principal, job_id: str) -> bool:
    """Whether the job is there for `principal` (its spec, maybe megabytes, is not read)."""
    query = select(Job.id).where(Job.id == job_id, principal.visible(Job.tenant))
    return session.execute(query).scalar_one_or_none() is not None


def list_jobs(
    session: Session,
    principal: Principal,
    *,
    status: JobStatus | None,
    cursor: str | None,
    limit: int,
    id_prefix: str | None = None,
) -> tuple[list[Job], str | None]:
    """A page of jobs, newest first, and the cursor of the next page (None on the last).

    The spec (data included, possibly megabytes) is not loaded: reading `job.spec` on a
    listed job raises; use `get_job` for it."""
    query = select(Job).options(defer(Job.spec, raiseload=True)).where(principal.visible(Job.tenant))
    if status is not None:
        query = query.where(Job.status == JobStatus(status).value)
    if id_prefix is not None:
        # the short ids people copy from the dashboard and the CLI (the id's index serves it)
        query = query.where(Job.id.startswith(id_prefix, autoescape=True))
    return paging.page(session, query, Job, cursor=cursor, limit=limit)


def epochs_since(session: Session, principal: Principal, job_id: str, since: int) -> list[Epoch]:
    """The recorded epochs numbered `since` or later (0-based, as in tf.js's history.epoch)."""
    get_job(session, principal, job_id)
    query = select(Epoch).where(Epoch.job_id == job_id, Epoch.epoch >= since).order_by(Epoch.epoch)
    return list(session.execute(query).scalars())


def final_weights(session: Session, principal: Principal, job_id: str) -> list[np.ndarray]:
    """The trained weights in getWeights() order, as float32 arrays."""
    job = get_job(session, principal, job_id)
    stored = session.get(Weights, job_id)
    if stored is None:
        raise JobHasNoWeights(job_id, job.status)
    return weights_from_bytes(stored.data)


def request_cancel(session: Session, principal: Principal, job_id: str) -> Job:
    """Cancel a job: a queued one is cancelled at once and never starts; a running one gets
    the flag its worker reads at its next heartbeat. Cancelling a cancelled job is a no-op."""
    get_job(session, principal, job_id)
    now = utcnow()
    cancelled = leases.change(
        session,
        Job,
        job_id,
        Job.status == JobStatus.queued.value,
        status=JobStatus.cancelled.value,
        cancel_requested=True,
        finished_at=now,
    )
    if not cancelled:
        leases.change(session, Job, job_id, Job.status == JobStatus.running.value, cancel_requested=True)
    job = get_job(session, principal, job_id)
    if job.status not in (JobStatus.running, JobStatus.cancelled):
        raise JobNotCancellable(job_id, job.status)
    return job


def delete_job(session: Session, principal: Principal, job_id: str) -> None:
    """Remove a job that has ended and everything recorded of it: its epochs, checkpoint,
    weights, evaluations and dataset links go with its row (ON DELETE CASCADE, on SQLite
    too: the engine turns its foreign keys on). Refused while the job is queued or running
    (cancel it first) or while one of its evaluations is: a worker would lose its writes."""
    job = get_job(session, principal, job_id)
    evaluating = session.execute(
        select(Evaluation.id).where(Evaluation.job_id == job_id, Evaluation.status.in_(_values_of(ACTIVE))).limit(1)
    ).scalar_one_or_none()
    if evaluating is not None:
        raise JobNotDeletable(job_id, f"is being evaluated ({evaluating}); delete it once the evaluation ended")
    # conditional, as every change of a job is: a job that a worker claims meanwhile stays
    deleted = session.execute(
        delete(Job)
        .where(Job.id == job_id, Job.status.in_(_values_of(FINISHED)))
        .returning(Job.id)
        .execution_options(synchronize_session=False)
    ).scalar_one_or_none()
    if deleted is None:
        session.refresh(job)
        raise JobNotDeletable(job_id, f"is {job.status}; cancel it first (POST /v1/jobs/{job_id}/cancel)")
    session.expunge(job)


# --- the worker side ------------------------------------------------------------------


def claim(
    session: Session,
    job_id: str,
    *,
    worker: str,
    lease_seconds: float,
    devices: Collection[Device] = tuple(Device),
    max_attempts: int | None = None,
) -> Claim | None:
    """Take a queued job, or take over a running one whose lease expired (its worker died).

    None when another worker holds a live lease, the job has ended (a duplicate or late
    delivery), or it asks for a device not in `devices` (a message that reached a worker of
    the wrong kind: the job stays queued for one of the right kind). Instead of being
    resumed, a job whose dead worker had been asked to cancel ends cancelled here, and one
    that has lost `max_attempts` workers already ends failed: a job that kills every worker
    it runs on (out of memory, say) must not go round the cluster forever."""
    served_devices = _values(devices)
    row = leases.claim(
        session,
        _CLAIM,
        job_id,
        worker=worker,
        lease_seconds=lease_seconds,
        max_attempts=max_attempts,
        devices=served_devices,
    )
    if row is None:
        served = Job.device.in_(served_devices)
        # a job ended here keeps its last checkpoint: its model is exported from it
        now = utcnow()
        cancelled = leases.change(
            session,
            Job,
            job_id,
            leases.claimable(Job, now),
            Job.cancel_requested.is_(True),
            served,
            status=JobStatus.cancelled.value,
            finished_at=now,
            lease_expires_at=None,
        )
        if not cancelled:
            leases.give_up(session, Job, job_id, served, max_attempts=max_attempts)
        return None
    return Claim(
        job_id=job_id,
        attempt=row.attempt,
        spec=row.spec,
        device=Device(row.device),
        lease_expires_at=row.lease_expires_at,
        checkpoint=row.checkpoint,
    )


def _checkpoint_of(job_id: Any) -> Any:
    return select(Checkpoint.data).where(Checkpoint.job_id == job_id).scalar_subquery().label("checkpoint")


_CLAIM = leases.claiming(
    Job,
    Job.cancel_requested.is_(False),
    Job.device.in_(bindparam("devices", expanding=True)),
    # the checkpoint comes back with the claim: one statement, not two
    returning=(Job.spec, Job.device, _checkpoint_of(Job.id)),
)


@dataclass(frozen=True)
class EpochRecord:
    """One finished epoch as the worker reports it."""

    epoch: int  # 0-based; afterwards `epochs_done` is epoch + 1
    logs: dict[str, float]
    wall_time: float  # seconds the fit spent on it
    # when it ended (stored as the row's recorded_at): the row reaches the database at the
    # worker's next report, up to TRAINQ_REPORT_INTERVAL_SECONDS later
    ended_at: datetime


def record_epochs(
    session: Session,
    job_id: str,
    *,
    attempt: int,
    epochs: Sequence[EpochRecord],
    checkpoint: tuple[int, bytes] | None = None,
) -> Lease:
    """Store a batch of finished epochs (in order) in one statement, and, when given, the
    checkpoint (epochs completed, bytes) taken after the last of them; an earlier attempt's
    rows for the same epochs are replaced (a resumed attempt runs again the epochs after
    its checkpoint). Answers as a heartbeat does: whether the job is still this attempt's
    (nothing is written when it is not), and whether it was asked to cancel, so that a job
    of short epochs stops at its next report rather than at its next heartbeat.

    A log value that is NaN or infinite (a metric such as MAPE on zero targets) is stored
    as null."""
    now = utcnow()
    # a report is a sign of life too
    lease = leases.update_owned(session, Job, job_id, attempt, heartbeat_at=now, **_progress(epochs))
    if not lease.owned:
        return lease
    write_epochs(session, job_id, epochs)
    if checkpoint is not None:
        epoch, data = checkpoint
        checkpoint_row = insert(session, Checkpoint).values(
            job_id=job_id, epoch=epoch, attempt=attempt, data=data, saved_at=now
        )
        session.execute(
            checkpoint_row.on_conflict_do_update(
                index_elements=["job_id"],
                set_=dict(epoch=epoch, attempt=attempt, data=checkpoint_row.excluded.data, saved_at=now),
            )
        )
    return lease


def _progress(epochs: Sequence[EpochRecord]) -> dict[str, Any]:
    """The job's columns that follow its last epoch: how many are done, the latest logs."""
    return dict(epochs_done=epochs[-1].epoch + 1, latest_logs=json_logs(epochs[-1].logs)) if epochs else {}


# PostgreSQL takes a batch as one JSON document of EpochRecords, read by the server
# (jsonb_to_recordset): 20,000 epochs cost the worker a JSON dump of one list, where as many
# parameter sets (executemany, even pipelined) bound and sent each row (0.4-0.5 s of CPU)
_EPOCHS_FROM_JSON = text(
    "INSERT INTO epochs (job_id, epoch, logs, wall_time, recorded_at) "
    "SELECT :job_id, row.epoch, row.logs, row.wall_time, row.ended_at "
    "FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
    "AS row(epoch integer, logs jsonb, wall_time double precision, ended_at timestamptz) "
    "ON CONFLICT (job_id, epoch) DO UPDATE SET "
    "logs = excluded.logs, wall_time = excluded.wall_time, recorded_at = excluded.recorded_at"
)


def _finite(value: object) -> float | None:
    """A log value msgspec cannot encode itself (a NumPy scalar) as `finite_or_none` takes it."""
    if isinstance(value, Real):
        return finite_or_none(value)
    raise TypeError(f"a log value of type {type(value).__name__} is not a number")


# msgspec writes the records as they are, at a twentieth of the CPU of building a dict per
# row for json.dumps (5 us an epoch, a tenth of a small model's training); a NaN or
# infinite value becomes null, as `json_logs` makes it
_EPOCHS_JSON = msgspec.json.Encoder(enc_hook=_finite)


def write_epochs(session: Session, job_id: str, epochs: Sequence[EpochRecord]) -> None:
    """Insert the job's rows of `epochs`, replacing an earlier attempt's of the same epochs."""
    if not epochs:
        return
    if session.get_bind().dialect.name == "postgresql":
        session.connection().execute(_EPOCHS_FROM_JSON, dict(job_id=job_id, rows=_EPOCHS_JSON.encode(epochs).decode()))
        return
    rows = [dict(epoch=e.epoch, logs=json_logs(e.logs), wall_time=e.wall_time, recorded_at=e.ended_at) for e in epochs]
    # elsewhere (SQLite) one statement, its rows as parameter sets (the driver's executemany):
    # compiled once and cached, where a VALUES list of a thousand rows was compiled afresh at
    # every report and cost more than the fit
    statement = insert(session, Epoch).values(job_id=job_id)
    session.connection().execute(
        statement.on_conflict_do_update(
            index_elements=["job_id", "epoch"],
            set_=dict(
                logs=statement.excluded.logs,
                wall_time=statement.excluded.wall_time,
                recorded_at=statement.excluded.recorded_at,
            ),
        ),
        rows,
    )


def rewind_to_checkpoint(session: Session, job_id: str, *, attempt: int) -> None:
    """Forget the epochs an earlier attempt recorded after its last checkpoint: this attempt
    runs them again (bit for bit the same) and records them anew. Without this, a resumed
    job that then ended earlier (cancelled, say) would keep rows of epochs it never ran."""
    resumes_at = select(Checkpoint.epoch).where(Checkpoint.job_id == job_id).scalar_subquery()
    session.execute(delete(Epoch).where(Epoch.job_id == job_id, Epoch.epoch >= func.coalesce(resumes_at, 0)))
    leases.update_owned(session, Job, job_id, attempt, epochs_done=func.coalesce(resumes_at, 0))


# The end of a job takes the epochs its worker still held (`epochs`): they are written in
# the transaction that ends it, so nobody sees the job ended without them, and its count of
# epochs done changes in the same UPDATE as its state.


_INSERT_WEIGHTS = sql_insert(Weights)


def succeed(
    session: Session,
    job_id: str,
    *,
    attempt: int,
    weights: Sequence[np.ndarray],
    epochs: Sequence[EpochRecord] = (),
    may_have_checkpoint: bool = True,
) -> bool:
    """End the job succeeded with its final weights (both or neither, in one transaction).
    Its checkpoint is deleted, unless the caller knows there is none (`may_have_checkpoint`:
    a first attempt that took none)."""
    if not _finish(session, job_id, attempt, JobStatus.succeeded, epochs):
        return False
    if may_have_checkpoint:
        # its final weights say all the checkpoint did; a cancelled or failed job keeps its
        # last checkpoint, the model it got to (exported as model.json, never resumed)
        session.execute(delete(Checkpoint).where(Checkpoint.job_id == job_id))
    core(session).execute(_INSERT_WEIGHTS, dict(job_id=job_id, data=weights_to_bytes(weights), saved_at=utcnow()))
    return True


def fail(session: Session, job_id: str, *, attempt: int, error: str, epochs: Sequence[EpochRecord] = ()) -> bool:
    """End the job failed with the engine's message; the epochs it finished and its last checkpoint are kept."""
    return _finish(session, job_id, attempt, JobStatus.failed, epochs, error=error)


def cancelled(session: Session, job_id: str, *, attempt: int, epochs: Sequence[EpochRecord] = ()) -> bool:
    """End a running job cancelled after its worker saw the flag; its epochs and last checkpoint are kept."""
    return _finish(session, job_id, attempt, JobStatus.cancelled, epochs)


def hand_back(session: Session, job_id: str, *, attempt: int) -> bool:
    """The worker is shutting down: queued again at once (`leases.hand_back`)."""
    return leases.hand_back(session, Job, job_id, attempt=attempt)


# --- weights as bytes -----------------------------------------------------------------


def weights_to_bytes(weights: Sequence[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    # zero-padded names keep getWeights() order when read back
    arrays = {f"w{i:04d}": np.asarray(w, dtype=np.float32) for i, w in enumerate(weights)}
    np.savez(buffer, **arrays)  # type: ignore[arg-type]  # mypy sees **arrays reach allow_pickle; keys are w0000...
    return buffer.getvalue()


def weights_from_bytes(data: bytes) -> list[np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return [archive[name].astype(np.float32, copy=False) for name in sorted(archive.files)]


# --- internals ------------------------------------------------------------------------


def _values(devices: Collection[Device]) -> list[str]:
    return [Device(device).value for device in devices]


def _values_of(statuses: Collection[JobStatus]) -> list[str]:
    return sorted(JobStatus(status).value for status in statuses)


def _finish(
    session: Session,
    job_id: str,
    attempt: int,
    status: JobStatus,
    epochs: Sequence[EpochRecord],
    error: str | None = None,
) -> bool:
    if not leases.finish(session, Job, job_id, attempt=attempt, status=status, error=error, **_progress(epochs)):
        return False
    if epochs:
        write_epochs(session, job_id, epochs)
    return True
