"""Running one training job on a worker, and the sweep that re-sends lost jobs.

The Celery task hands `run_job` a job id; everything else comes from the database:
the claim (an atomic state change, so a duplicate delivery does nothing), the spec and
its data, the checkpoint to resume from when an earlier worker died. While the engine
fits, a heartbeat thread renews the lease and reads the cancel flag; the engine polls
that flag between batches, so cancelling costs it one attribute read per batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from trainq.services.datasets import jobs as dataset_jobs
from trainq.services.datasets.storage import storage_for
from trainq.services.db.models import Job
from trainq.services.db.session import DATABASE_UNAVAILABLE, session_scope
from trainq.services.engine import Checkpoint, Diverged, EngineError, EpochEnd, FitResult, fit
from trainq.services.jobs import service as jobs
from trainq.services.jobs.reporting import EpochBuffer
from trainq.services.jobs.service import Claim
from trainq.services.jobs.states import Device, JobStatus
from trainq.services.leases import requeue
from trainq.services.leases.keeper import LeaseKeeper, hold
from trainq.services.metrics import EPOCH_SECONDS, JOB_RESUMES, JOBS_FINISHED
from trainq.services.placement import Route, devices_served, route
from trainq.services.settings import Settings
from trainq.services.spec import JobSpec
from trainq.services.workers.device import CPU_NUMPY, WorkerDevice

log = logging.getLogger(__name__)

SessionFactory = sessionmaker[Session]


@dataclass(frozen=True)
class Outcome:
    """How a delivery of a job ended on this worker."""

    job_id: str
    # the state this worker ended the job in; None when it ended nothing: a duplicate or
    # late delivery, a finished job, or (taken_over) another worker took it over mid-fit
    status: JobStatus | None
    error: str | None = None
    taken_over: bool = False
    # the worker is stopping and queued the job again: its message is to be sent now
    handed_back: Route | None = None


def run_job(
    session_factory: SessionFactory,
    job_id: str,
    *,
    worker: str,
    settings: Settings,
    device: WorkerDevice = CPU_NUMPY,
    changed: Callable[[str], None] | None = None,
    stopping: threading.Event | None = None,
) -> Outcome:
    """Claim the job and train it to its end on `device`; never raises for a job's own failure.

    A job asking for a device kind this worker does not serve is not claimed (it stays
    queued for a worker that does). `changed` is told the job's id after each committed
    change (its claim, each report of epochs, its end): the live push to event streams.

    While the database is unreachable the claim is tried again for up to
    CLAIM_WAIT_SECONDS; then the database error is raised, for the caller to put the
    delivery back on its queue. Once `stopping` is set (the worker shuts down), the fit
    stops at its next batch and the job is handed back (`Outcome.handed_back`): the next
    worker resumes it from its last checkpoint."""
    changed = changed or _nobody
    stopping = stopping or threading.Event()
    claim_here = partial(jobs.claim, devices=devices_served(device.kind))
    held = hold(session_factory, Job, job_id, claim_here, worker=worker, settings=settings, stopping=stopping)
    if held is None:
        return Outcome(job_id, None)
    claim, lease = held
    changed(job_id)
    if claim.attempt > 1:
        JOB_RESUMES.inc()
    buffer = EpochBuffer(
        session_factory,
        job_id,
        claim.attempt,
        learn=lease.learn,
        report_interval=settings.report_interval_seconds,
        checkpoint_interval=settings.checkpoint_interval_seconds,
        written=changed,
    )
    failure: str | None = None
    try:
        with lease:
            result = _train(session_factory, claim, buffer, lease, device, settings, stopping)
    except EngineError as error:
        # Diverged's message is already the sentence a person reads ("diverged at epoch k: ...")
        failure = error.message if isinstance(error, Diverged) else str(error)
    except DATABASE_UNAVAILABLE as error:
        # Nothing is wrong with the job: leave it to its lease. Once the lease runs out the
        # requeue sweep sends it again and a worker resumes it from its last checkpoint.
        log.warning("job %s: the database failed (%s); the job resumes once its lease expires", job_id, error)
        return Outcome(job_id, None, error=f"database unavailable: {error}")
    except Exception as error:
        # Failing the job (rather than re-raising) keeps Celery from retrying it forever.
        log.exception("job %s: unexpected error", job_id)
        failure = f"internal error: {error!r}"
    if lease.lost.is_set():
        return Outcome(job_id, None, taken_over=True)
    try:
        if failure is not None:
            outcome = _end(session_factory, claim, buffer, JobStatus.failed, error=failure)
        elif result.stop_reason == "cancelled" and stopping.is_set() and not lease.cancel_requested.is_set():
            outcome = _hand_back(session_factory, claim)
        elif result.stop_reason == "cancelled":
            outcome = _end(session_factory, claim, buffer, JobStatus.cancelled)
        else:
            outcome = _end(session_factory, claim, buffer, JobStatus.succeeded, weights=result.weights)
    except DATABASE_UNAVAILABLE as error:
        log.warning("job %s: the database failed at its end (%s); it resumes once its lease expires", job_id, error)
        return Outcome(job_id, None, error=f"database unavailable: {error}")
    changed(job_id)
    return outcome


def _nobody(job_id: str) -> None:
    pass


def requeue_stranded(
    session_factory: SessionFactory,
    enqueue: Callable[[str, Route], None],
    settings: Settings,
    kind: Device = Device.cpu,
    messages_waiting: Callable[[str], int] | None = None,
) -> list[str]:
    """Send again the jobs no broker message is likely to carry: queued ones enqueued more
    than `requeue_after_seconds` ago (the broker lost the message, or the send after the
    submit failed) and running ones whose lease expired (their worker died). A job sent
    twice is harmless: the claim lets one delivery run it. A worker of `kind` re-sends only
    the jobs it could run, each to its own queue at its own priority. Returns the ids sent.

    With `messages_waiting` (the broker's count of messages on a queue), queued jobs are
    re-sent only as many as their queue lacks: in a backlog every waiting job's message is
    there, and re-sending each one every sweep would pile up duplicates for as long as the
    backlog lasts (hours, for a large sweep of long jobs)."""
    served = devices_served(kind)
    return requeue.requeue_stranded(
        session_factory,
        Job,
        settings,
        Job.device.in_([device.value for device in served]),
        routes=_routes,
        send=enqueue,
        devices=served,
        messages_waiting=messages_waiting,
    )


def _routes(session: Session, job_ids: Sequence[str]) -> Mapping[str, Route]:
    rows = session.execute(select(Job.id, Job.device, Job.sweep_id, Job.status).where(Job.id.in_(job_ids))).all()
    return {
        # a job whose worker died goes ahead of the backlog (services.placement)
        job_id: route(device, in_sweep=sweep_id is not None, resumed=status == JobStatus.running.value)
        for job_id, device, sweep_id, status in rows
    }


def _train(
    session_factory: SessionFactory,
    claim: Claim,
    buffer: EpochBuffer,
    lease: LeaseKeeper,
    on: WorkerDevice,
    settings: Settings,
    stopping: threading.Event,
) -> FitResult:
    spec = JobSpec.model_validate(claim.spec)
    config = spec.to_training_config()
    with session_scope(session_factory) as session:
        if claim.attempt > 1:
            # a job taken over forgets the epochs recorded after its last checkpoint: this
            # attempt runs them again, bit for bit, and records them anew
            jobs.rewind_to_checkpoint(session, claim.job_id, attempt=claim.attempt)
        # an uploaded dataset is memory-mapped: the fit reads each batch's rows, not all of them
        x, y, validation = dataset_jobs.training_arrays(session, storage_for(settings), spec)
    xp, device = on.namespace()
    resume_from = Checkpoint.from_bytes(claim.checkpoint) if claim.checkpoint is not None else None
    epoch_started = time.monotonic()

    def on_epoch_end(end: EpochEnd) -> None:
        nonlocal epoch_started
        wall_time = time.monotonic() - epoch_started
        EPOCH_SECONDS.observe(wall_time)
        buffer.epoch_ended(end, wall_time)
        # the next epoch's clock starts after this one's report, so wall time is training time
        epoch_started = time.monotonic()

    return fit(
        config,
        x,
        y,
        validation_data=validation,
        xp=xp,
        device=device,
        on_epoch_end=on_epoch_end,
        should_stop=lambda: lease.should_stop() or stopping.is_set(),
        resume_from=resume_from,
    )


def _hand_back(session_factory: SessionFactory, claim: Claim) -> Outcome:
    # the epochs held since the last checkpoint are not written: the next attempt rewinds
    # to that checkpoint and runs them again, bit for bit the same
    with session_scope(session_factory) as session:
        owned = jobs.hand_back(session, claim.job_id, attempt=claim.attempt)
        job = session.get(Job, claim.job_id) if owned else None
        # it has run already: ahead of the backlog, as a job whose worker died (services.placement)
        routed = route(job.device, in_sweep=job.sweep_id is not None, resumed=True) if job is not None else None
    if routed is None:
        log.warning("job %s: attempt %d was taken over before it could be handed back", claim.job_id, claim.attempt)
        return Outcome(claim.job_id, None, taken_over=True)
    log.info("job %s: handed back at shutdown, queued again", claim.job_id)
    return Outcome(claim.job_id, JobStatus.queued, handed_back=routed)


def _end(
    session_factory: SessionFactory,
    claim: Claim,
    buffer: EpochBuffer,
    status: JobStatus,
    *,
    error: str | None = None,
    weights: list[Any] | None = None,
) -> Outcome:
    # the epochs still held go in with the state change: nobody sees the job ended without them
    held = buffer.take()
    with session_scope(session_factory) as session:
        if status is JobStatus.succeeded:
            assert weights is not None
            # a first attempt that took no checkpoint has none to delete
            checkpointed = claim.attempt > 1 or claim.checkpoint is not None or buffer.checkpointed
            owned = jobs.succeed(
                session,
                claim.job_id,
                attempt=claim.attempt,
                weights=weights,
                epochs=held,
                may_have_checkpoint=checkpointed,
            )
        elif status is JobStatus.cancelled:
            owned = jobs.cancelled(session, claim.job_id, attempt=claim.attempt, epochs=held)
        else:
            owned = jobs.fail(session, claim.job_id, attempt=claim.attempt, error=error or "failed", epochs=held)
    if not owned:
        log.warning("job %s: attempt %d was taken over; its %s is dropped", claim.job_id, claim.attempt, status)
        return Outcome(claim.job_id, None, taken_over=True)
    JOBS_FINISHED.labels(status.value).inc()
    log.info("job %s: %s%s", claim.job_id, status, f" ({error})" if error else "")
    return Outcome(claim.job_id, status, error)
