"""The tables: jobs, their epochs, their latest checkpoint and their final weights.

Designed for PostgreSQL (JSONB, timestamptz) and run unchanged on SQLite, the embedded
default. The schema itself is owned by the Alembic migrations in `migrations/`;
`tests/service/test_migrations.py` checks that these models and the migrations agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from trainq.services.jobs.states import Device, JobStatus
from trainq.services.leases.model import Leased
from trainq.services.leases.states import WorkStatus

# JSONB on PostgreSQL (indexable, compact); plain JSON text elsewhere
JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on every backend.

    SQLite keeps no zone, so values are stored there as naive UTC text (which also sorts
    and compares correctly as text) and given their zone back when read."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: trainq stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAME_MAX_LENGTH = 200
IDEMPOTENCY_KEY_MAX_LENGTH = 255


def utcnow() -> datetime:
    return datetime.now(UTC)


def _one_of(column: str, values: Iterable[StrEnum]) -> str:
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    # constraint names fixed by convention, so migrations can name what they drop
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSONDocument, datetime: UTCDateTime()}


class Job(Leased, Base):
    """A training job; its lease columns (status, attempt, worker, ...) are `Leased`'s."""

    __tablename__ = "jobs"
    kind = "job"

    name: Mapped[str | None] = mapped_column(String(NAME_MAX_LENGTH))
    device: Mapped[str] = mapped_column(String(8))
    # the validated JobSpec dumped by alias (tf.js field names), data included
    spec: Mapped[dict[str, Any]]
    # the tenant that submitted it (issue 11); its idempotency keys are its own
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"))
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH))
    # sha256 of the request that used `idempotency_key`: a replay with another body is refused
    request_hash: Mapped[str | None] = mapped_column(String(64))
    cancel_requested: Mapped[bool] = mapped_column(default=False, server_default=false())
    epochs_total: Mapped[int]
    epochs_done: Mapped[int] = mapped_column(default=0)
    latest_logs: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # issue 6: the sweep the job is a point of, and which point (its place in `Sweep.points`)
    sweep_id: Mapped[str | None] = mapped_column(ForeignKey("sweeps.id", ondelete="CASCADE"), index=True)
    sweep_index: Mapped[int | None]

    __table_args__ = (
        CheckConstraint(_one_of("status", JobStatus), name="status"),
        CheckConstraint(_one_of("device", Device), name="device"),
        UniqueConstraint("tenant", "idempotency_key"),
        # listing, newest first, with or without a status filter (keyset on created_at, id):
        # a tenant's own, or every tenant's for an admin
        Index("ix_jobs_created_at_id", "created_at", "id"),
        Index("ix_jobs_status_created_at_id", "status", "created_at", "id"),
        Index("ix_jobs_tenant_created_at_id", "tenant", "created_at", "id"),
        Index("ix_jobs_tenant_status_created_at_id", "tenant", "status", "created_at", "id"),
        # the requeue sweep: queued jobs by last enqueue, running jobs by lease expiry
        Index("ix_jobs_status_enqueued_at", "status", "enqueued_at"),
        Index("ix_jobs_status_lease_expires_at", "status", "lease_expires_at"),
    )

    @property
    def job_status(self) -> JobStatus:
        return JobStatus(self.status)

    @classmethod
    def cancel_flag(cls) -> Any:
        # a heartbeat tells a running job's worker that a person cancelled it
        return cls.cancel_requested


class Epoch(Base):
    """One epoch's logs (loss, val_loss, metrics), as the engine reported them."""

    __tablename__ = "epochs"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    # 0-based, as in tf.js's `history.epoch`
    epoch: Mapped[int] = mapped_column(primary_key=True)
    logs: Mapped[dict[str, Any]]
    wall_time: Mapped[float] = mapped_column(Float)
    # when the epoch ended on its worker, which writes it at its next report
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)


class Checkpoint(Base):
    """The latest epoch-boundary state of a running job; a worker taking over resumes from it."""

    __tablename__ = "checkpoints"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    # epochs completed when it was taken
    epoch: Mapped[int]
    attempt: Mapped[int]
    data: Mapped[bytes] = mapped_column(LargeBinary)
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)


class Weights(Base):
    """The final weights of a succeeded job, in getWeights() order, as an npz archive (no pickle)."""

    __tablename__ = "weights"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    saved_at: Mapped[datetime] = mapped_column(default=utcnow)


class JobBatch(Base):
    """A batch submit made with an Idempotency-Key: a retry of it answers with these jobs
    instead of storing them again. A batch without a key leaves no row."""

    __tablename__ = "job_batches"

    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"), primary_key=True)
    # its own namespace: a batch's key and a single submit's key do not collide
    idempotency_key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH), primary_key=True)
    # sha256 of the batch as stored: a retry with another body is refused
    request_hash: Mapped[str] = mapped_column(String(64))
    # the jobs it stored, in its order; one deleted since is left out of a replay
    job_ids: Mapped[list[str]] = mapped_column(JSONDocument)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# --- datasets (issue 4) ---------------------------------------------------------------

DATASET_FORMATS = ("csv", "npy", "npz", "json", "parquet")
# an evaluation cannot be cancelled
EVALUATION_STATUSES = tuple(status for status in WorkStatus if status is not WorkStatus.cancelled)


class Dataset(Base):
    """An uploaded dataset: float32 x and y stored as `.npy` files a worker memory-maps."""

    __tablename__ = "datasets"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(NAME_MAX_LENGTH))
    format: Mapped[str] = mapped_column(String(16))
    rows: Mapped[int]
    x_columns: Mapped[int]
    y_columns: Mapped[int]
    dtype: Mapped[str] = mapped_column(String(16))
    # the bytes uploaded, as received
    byte_size: Mapped[int] = mapped_column(BigInteger)
    # sha256 of the uploaded bytes; `content_key` adds the parse options: same content, same dataset
    sha256: Mapped[str] = mapped_column(String(64))
    content_key: Mapped[str] = mapped_column(String(64))
    # the tenant that uploaded it (issue 11): the same content uploaded by another tenant is another dataset
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"))
    # per column: name, role (x or y), min, max, mean, std
    summary: Mapped[dict[str, Any]]
    x_key: Mapped[str] = mapped_column(String(512))
    y_key: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint(f"format IN ({', '.join(repr(f) for f in DATASET_FORMATS)})", name="format"),
        UniqueConstraint("tenant", "content_key"),
        Index("ix_datasets_created_at_id", "created_at", "id"),
        Index("ix_datasets_tenant_created_at_id", "tenant", "created_at", "id"),
    )


class JobDataset(Base):
    """A dataset a job trains on: DELETE of a dataset is refused while a queued or running job uses it."""

    __tablename__ = "job_datasets"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    # training or validation
    role: Mapped[str] = mapped_column(String(16), primary_key=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)


class Evaluation(Leased, Base):
    """`model.evaluate` of a finished job over a dataset, run on a worker; leased as jobs are
    (migration 0004)."""

    __tablename__ = "evaluations"
    kind = "evaluation"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[str] = mapped_column(ForeignKey("datasets.id", ondelete="CASCADE"), index=True)
    batch_size: Mapped[int]
    # the tenant that asked for it (issue 11), owner of its job and its dataset
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"), index=True)
    # {"loss": ..., "<metric key>": ...} once succeeded
    logs: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # added to a filled table (migration 0004), hence the server default
    attempt: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    __table_args__ = (
        CheckConstraint(_one_of("status", EVALUATION_STATUSES), name="status"),
        # the requeue sweep: queued ones by last enqueue, running ones by lease expiry
        Index("ix_evaluations_status_enqueued_at", "status", "enqueued_at"),
    )


# --- the cluster: workers and sweeps (issue 6) -----------------------------------------


class Worker(Base):
    """A Celery worker node as it recorded itself at start; its heartbeat says it is alive.

    Online while `heartbeat_at` is recent (TRAINQ_WORKER_LOST_AFTER_SECONDS), lost after,
    stopped once it shut down cleanly. The jobs it runs are read from `jobs.worker`."""

    __tablename__ = "workers"

    # the Celery node name, e.g. trainq-1@host: a restarted worker takes its row over
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int]
    device_kind: Mapped[str] = mapped_column(String(8))
    device_name: Mapped[str] = mapped_column(String(255))
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger)
    array_library: Mapped[str] = mapped_column(String(16))
    concurrency: Mapped[int]
    started_at: Mapped[datetime]
    heartbeat_at: Mapped[datetime]
    stopped_at: Mapped[datetime | None]

    __table_args__ = (CheckConstraint("device_kind IN ('cpu', 'gpu')", name="device_kind"),)


class Sweep(Base):
    """A hyperparameter sweep: one job per point of a grid or of seeded random draws."""

    __tablename__ = "sweeps"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(NAME_MAX_LENGTH))
    # the job spec every point starts from, dumped by alias like `Job.spec`
    base_spec: Mapped[dict[str, Any]]
    device: Mapped[str] = mapped_column(String(8))
    # {"grid": {path: [values]}} or {"random": {"draws", "seed", "ranges"}}, as submitted
    space: Mapped[dict[str, Any]]
    # each point's {path: value}, in job order (sweep_index)
    points: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    metric: Mapped[str] = mapped_column(String(64))
    goal: Mapped[str] = mapped_column(String(8))
    # the tenant that created it (issue 11), and so of its jobs
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"))
    # as a job's: a retry of the create with the same key and body answers with this sweep
    idempotency_key: Mapped[str | None] = mapped_column(String(IDEMPOTENCY_KEY_MAX_LENGTH))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("goal IN ('min', 'max')", name="goal"),
        UniqueConstraint("tenant", "idempotency_key"),
        Index("ix_sweeps_created_at_id", "created_at", "id"),
        Index("ix_sweeps_tenant_created_at_id", "tenant", "created_at", "id"),
    )


# --- stored models: tf.js artifacts and saved jobs (issue 13) ---------------------------


class StoredModel(Base):
    """A model kept to start jobs from: uploaded as tf.js saves one, or saved from a job.

    Its layers and compile are the job spec's (dumped by alias, like `Job.spec`); its
    weights, in getWeights() order, an npz archive as `Weights.data`."""

    __tablename__ = "models"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(NAME_MAX_LENGTH))
    layers: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    # null: saved uncompiled (no trainingConfig); a job from it must give its own compile
    compile: Mapped[dict[str, Any] | None]
    weights: Mapped[bytes] = mapped_column(LargeBinary)
    parameters: Mapped[int] = mapped_column(BigInteger)
    # the job it was saved from (POST /v1/jobs/{id}/model); null for an upload
    source_job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"))
    # the tenant that stored it (issue 11)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_models_created_at_id", "created_at", "id"),
        Index("ix_models_tenant_created_at_id", "tenant", "created_at", "id"),
    )


# --- tenants and their API keys (issue 11) ---------------------------------------------

TENANT_MAX_LENGTH = 64


class Tenant(Base):
    """Whoever owns jobs, datasets, sweeps and evaluations; its quotas (null: no limit)."""

    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(TENANT_MAX_LENGTH), primary_key=True)
    # queued + running jobs at once
    max_active_jobs: Mapped[int | None]
    # the bytes of its stored datasets, as uploaded
    max_dataset_bytes: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    """An API key, stored as the SHA-256 of the key: the key itself is shown once, at creation.

    The key reads `tq_<id>_<secret>`: `id` is public (listed, revoked by), and finds the row."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    tenant: Mapped[str] = mapped_column(ForeignKey("tenants.name"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    # sees and acts on every tenant's work
    admin: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
