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

from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from trainq.services.engine.errors import EngineError


class TrainqError(Exception):
    status_code = 400

    def __init__(self, message: str, field: str = "body", reason: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        # what is wrong at `field`: the message, unless it names the field too
        self.reason = message if reason is None else reason

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
    """No `kind` of that id, or one the caller may not see: its existence is not revealed."""

    status_code = 404
    kind: ClassVar[str]  # how the message names it: job, dataset, API key ...
    field_of_id: ClassVar[str]  # where a request gives its id, unless the raiser names another field

    def __init__(self, identifier: str, field: str | None = None) -> None:
        super().__init__(f"{self.kind} {identifier} not found", field or self.field_of_id)


class Conflict(TrainqError):
    status_code = 409


class InvalidInput(TrainqError):
    status_code = 422

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}", field, message)

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
    kind, field_of_id = "job", "path.job_id"


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
    kind, field_of_id = "dataset", "path.dataset_id"


class DatasetInUse(Conflict):
    def __init__(self, dataset_id: str, job_ids: list[str]) -> None:
        super().__init__(
            f"dataset {dataset_id} is used by queued or running work ({_first_five(job_ids)}); "
            "delete it once that ends",
            "path.dataset_id",
        )


class DatasetDeleted(Conflict):
    """The dataset a job or an evaluation names was deleted while it was being stored."""

    def __init__(self, dataset_id: str, field: str) -> None:
        super().__init__(f"dataset {dataset_id} was deleted while this request was stored; upload it again", field)


class EvaluationNotFound(NotFound):
    kind, field_of_id = "evaluation", "path.evaluation_id"


# --- the cluster (issue 6) ---


class SweepNotFound(NotFound):
    kind, field_of_id = "sweep", "path.sweep_id"


class SweepNotDeletable(Conflict):
    def __init__(self, sweep_id: str, job_ids: list[str]) -> None:
        super().__init__(
            f"sweep {sweep_id} has queued or running jobs ({_first_five(job_ids)}); "
            f"cancel it (POST /v1/sweeps/{sweep_id}/cancel) and delete it once they ended",
            "path.sweep_id",
        )


# --- stored models (issue 13) ---


class ModelNotFound(NotFound):
    kind, field_of_id = "model", "path.model_id"


# --- tenants and keys (issue 11) ---


class KeyNotFound(NotFound):
    kind, field_of_id = "API key", "key_id"


class TenantNotFound(NotFound):
    kind, field_of_id = "tenant", "tenant"


class QuotaExceeded(TrainqError):
    status_code = 429

    def __init__(self, limit: str, message: str, *, retry_after: int) -> None:
        super().__init__(message, f"quota.{limit}")
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def _first_five(ids: list[str]) -> str:
    """The ids a refusal names: the first five, then "..." for the rest."""
    return ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
