"""The job state machine: submit, claim, record epoch, succeed, fail, cancel, requeue.

CONTRACT (to be implemented). Every function takes the SQLAlchemy session first and never
commits: the request dependency or the worker's session scope owns the transaction.

class JobStatus(StrEnum):   # services/jobs/states.py
    queued, running, succeeded, failed, cancelled

submit(session, spec: JobSpec, *, name: str | None, device: Device, idempotency_key: str | None) -> tuple[Job, bool]
    # stores the validated job (status queued, attempt 0); bool: created (False: the idempotent replay)
get_job(session, job_id) -> Job                                     # JobNotFound
list_jobs(session, *, status: JobStatus | None, cursor: str | None, limit: int) -> tuple[list[Job], str | None]
epochs_since(session, job_id, since: int) -> list[Epoch]            # JobNotFound
final_weights(session, job_id) -> list[np.ndarray]                  # JobHasNoWeights (409)
request_cancel(session, job_id) -> Job      # queued: cancelled now; running: cancel flag set; else JobNotCancellable

# worker side; `attempt` fences a worker that lost its lease: its writes are refused
claim(session, job_id, *, worker: str, lease_seconds: float) -> Claim | None
    # atomic UPDATE: queued -> running (attempt + 1), or running with an expired lease -> taken over
    # (attempt + 1, resumes from the last checkpoint). None when another worker holds a live lease,
    # or the job is finished or cancelled.
renew_lease(session, job_id, *, attempt: int, lease_seconds: float) -> Lease   # Lease(owned: bool, cancel_requested: bool)
record_epoch(session, job_id, *, attempt: int, epoch: int, logs: dict[str, float], wall_time: float,
             checkpoint: bytes) -> bool
succeed(session, job_id, *, attempt: int, weights: list[np.ndarray]) -> bool
fail(session, job_id, *, attempt: int, error: str) -> bool
cancelled(session, job_id, *, attempt: int) -> bool
stranded_jobs(session, *, queued_before: datetime, now: datetime) -> list[str]
    # queued jobs last enqueued before `queued_before`, and running jobs whose lease expired
mark_enqueued(session, job_ids: list[str]) -> None
"""
