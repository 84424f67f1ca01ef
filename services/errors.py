"""trainq's domain errors, raised by services and mapped to HTTP once, in `api/errors.py`.

TrainqError
 ├── NotFound          404  JobNotFound, DatasetNotFound, EvaluationNotFound, ModelNotFound
 ├── Conflict          409  JobHasNoWeights, JobNotCancellable, IdempotencyKeyReused, DatasetInUse,
 │                     DatasetDeleted, JobNotDeletable, SweepNotDeletable
 └── InvalidInput      422  a field of the request is wrong (its dotted path and why)
     ├── PayloadTooLarge 413
     └── InvalidArtifact 422  a tf.js model.json or weights file trainq cannot take (services.models.artifact)
"""

from __future__ import annotations


class TrainqError(Exception):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(TrainqError):
    status_code = 404


class Conflict(TrainqError):
    status_code = 409


class InvalidInput(TrainqError):
    status_code = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class PayloadTooLarge(InvalidInput):
    status_code = 413


class JobNotFound(NotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found")
        self.job_id = job_id


class JobHasNoWeights(Conflict):
    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id} has no weights yet (status {status})")


class JobNotCancellable(Conflict):
    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id} is {status} and cannot be cancelled")


class JobNotDeletable(Conflict):
    """A job still queued or running (or being evaluated) keeps everything it has: cancel it first."""

    def __init__(self, job_id: str, why: str) -> None:
        super().__init__(f"job {job_id} {why}")
        self.field = "path.job_id"


class IdempotencyKeyReused(Conflict):
    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for a different request")


# --- datasets (issue 4) ---


class DatasetNotFound(NotFound):
    def __init__(self, dataset_id: str, field: str = "path.dataset_id") -> None:
        super().__init__(f"dataset {dataset_id} not found")
        self.field = field


class DatasetInUse(Conflict):
    def __init__(self, dataset_id: str, job_ids: list[str]) -> None:
        shown = ", ".join(job_ids[:5]) + (" ..." if len(job_ids) > 5 else "")
        super().__init__(f"dataset {dataset_id} is used by queued or running work ({shown}); delete it once that ends")
        self.field = "path.dataset_id"


class DatasetDeleted(Conflict):
    """The dataset a job or an evaluation names was deleted while it was being stored."""

    def __init__(self, dataset_id: str, field: str) -> None:
        super().__init__(f"dataset {dataset_id} was deleted while this request was stored; upload it again")
        self.field = field


class EvaluationNotFound(NotFound):
    def __init__(self, evaluation_id: str) -> None:
        super().__init__(f"evaluation {evaluation_id} not found")
        self.field = "path.evaluation_id"


# --- the cluster (issue 6) ---


class SweepNotFound(NotFound):
    def __init__(self, sweep_id: str) -> None:
        super().__init__(f"sweep {sweep_id} not found")
        self.field = "path.sweep_id"


class SweepNotDeletable(Conflict):
    def __init__(self, sweep_id: str, job_ids: list[str]) -> None:
        shown = ", ".join(job_ids[:5]) + (" ..." if len(job_ids) > 5 else "")
        super().__init__(
            f"sweep {sweep_id} has queued or running jobs ({shown}); cancel it (POST /v1/sweeps/{sweep_id}/cancel) "
            "and delete it once they ended"
        )
        self.field = "path.sweep_id"


# --- stored models (issue 13) ---


class ModelNotFound(NotFound):
    def __init__(self, model_id: str, field: str = "path.model_id") -> None:
        super().__init__(f"model {model_id} not found")
        self.field = field
