"""trainq's domain errors, raised by services and mapped to HTTP once, in `api/errors.py`.

TrainqError
 ├── NotAuthenticated  401  no API key, or one that is not valid or was revoked
 ├── NotFound          404  JobNotFound, DatasetNotFound, EvaluationNotFound, ModelNotFound, SweepNotFound,
 │                     KeyNotFound, TenantNotFound
 ├── Conflict          409  JobHasNoWeights, JobNotCancellable, IdempotencyKeyReused, DatasetInUse,
 │                     DatasetDeleted, JobNotDeletable, SweepNotDeletable
 ├── QuotaExceeded     429  past a tenant's limit (naming it, and when to retry)
 └── InvalidInput      422  a field of the request is wrong (its dotted path and why)
     ├── PayloadTooLarge 413
     └── InvalidArtifact 422  a tf.js model.json or weights file trainq cannot take (services.models.reading)

Each knows, from where it is raised, the field of the request at fault: a dotted path
(`model.layers[0].units`, `path.job_id`, `query.cursor`, `header.Idempotency-Key`), `body`
for the body as a whole.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from trainq.services.engine.errors import EngineError


class TrainqError(Exception):
    status_code = 400

    def __init__(self, message: str, field: str = "body") -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def reason(self) -> str:
        """What is wrong at `field`."""
        return self.message

    @property
    def detail(self) -> str:
        """The error as one sentence."""
        return f"{self.message[:1].upper()}{self.message[1:]}."

    @property
    def headers(self) -> dict[str, str]:
        """Headers the answer carries (WWW-Authenticate, Retry-After)."""
        return {}


class NotAuthenticated(TrainqError):
    status_code = 401

    def __init__(self, message: str) -> None:
        super().__init__(message, "header.Authorization")

    @property
    def headers(self) -> dict[str, str]:
        # RFC 6750: the scheme a client should authenticate with
        return {"WWW-Authenticate": 'Bearer realm="trainq"'}


class NotFound(TrainqError):
    status_code = 404


class Conflict(TrainqError):
    status_code = 409


class InvalidInput(TrainqError):
    status_code = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field)
        self._reason = message

    @property
    def reason(self) -> str:
        return self._reason

    @property
    def detail(self) -> str:
        return self.message

    @classmethod
    def of(cls, error: EngineError, field: str | None = None) -> InvalidInput:
        """The engine's refusal as the request's, at `field` (default: the engine's own, a
        path into the job spec): the one place an EngineError becomes an InvalidInput."""
        return cls(field or error.field, error.message)

    def inside(self, where: str, note: str = "") -> InvalidInput:
        """The same error of a part of the request at `where` (`points[3]`), `note` added to its reason."""
        return type(self)(f"{where}.{self.field}", f"{self.reason}{note}")


class PayloadTooLarge(InvalidInput):
    status_code = 413


class JobNotFound(NotFound):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} not found", "path.job_id")
        self.job_id = job_id


class JobHasNoWeights(Conflict):
    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id} has no weights yet (status {status})", "path.job_id")


class JobNotCancellable(Conflict):
    def __init__(self, job_id: str, status: str) -> None:
        super().__init__(f"job {job_id} is {status} and cannot be cancelled", "path.job_id")


class JobNotDeletable(Conflict):
    """A job still queued or running (or being evaluated) keeps everything it has: cancel it first."""

    def __init__(self, job_id: str, why: str) -> None:
        super().__init__(f"job {job_id} {why}", "path.job_id")


class IdempotencyKeyReused(Conflict):
    def __init__(self, key: str) -> None:
        super().__init__(f"Idempotency-Key {key!r} was already used for a different request", "header.Idempotency-Key")


# --- datasets (issue 4) ---


class DatasetNotFound(NotFound):
    def __init__(self, dataset_id: str, field: str = "path.dataset_id") -> None:
        super().__init__(f"dataset {dataset_id} not found", field)


class DatasetInUse(Conflict):
    def __init__(self, dataset_id: str, job_ids: list[str]) -> None:
        shown = ", ".join(job_ids[:5]) + (" ..." if len(job_ids) > 5 else "")
        super().__init__(
            f"dataset {dataset_id} is used by queued or running work ({shown}); delete it once that ends",
            "path.dataset_id",
        )


class DatasetDeleted(Conflict):
    """The dataset a job or an evaluation names was deleted while it was being stored."""

    def __init__(self, dataset_id: str, field: str) -> None:
        super().__init__(f"dataset {dataset_id} was deleted while this request was stored; upload it again", field)


class EvaluationNotFound(NotFound):
    def __init__(self, evaluation_id: str) -> None:
        super().__init__(f"evaluation {evaluation_id} not found", "path.evaluation_id")


# --- the cluster (issue 6) ---


class SweepNotFound(NotFound):
    def __init__(self, sweep_id: str) -> None:
        super().__init__(f"sweep {sweep_id} not found", "path.sweep_id")


class SweepNotDeletable(Conflict):
    def __init__(self, sweep_id: str, job_ids: list[str]) -> None:
        shown = ", ".join(job_ids[:5]) + (" ..." if len(job_ids) > 5 else "")
        super().__init__(
            f"sweep {sweep_id} has queued or running jobs ({shown}); cancel it (POST /v1/sweeps/{sweep_id}/cancel) "
            "and delete it once they ended",
            "path.sweep_id",
        )


# --- stored models (issue 13) ---


class ModelNotFound(NotFound):
    def __init__(self, model_id: str, field: str = "path.model_id") -> None:
        super().__init__(f"model {model_id} not found", field)


# --- tenants and keys (issue 11) ---


class KeyNotFound(NotFound):
    def __init__(self, key_id: str) -> None:
        super().__init__(f"API key {key_id} not found", "key_id")


class TenantNotFound(NotFound):
    def __init__(self, tenant: str) -> None:
        super().__init__(f"tenant {tenant} not found", "tenant")


class QuotaExceeded(TrainqError):
    status_code = 429

    def __init__(self, limit: str, message: str, *, retry_after: int) -> None:
        super().__init__(message, f"quota.{limit}")
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}
