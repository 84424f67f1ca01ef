"""trainq's configuration: one settings object, read from environment variables.

With nothing set, everything runs on one machine: a SQLite file and Celery's
SQLAlchemy transport on SQLite, under `TRAINQ_HOME` (default `./.trainq`). With
`DATABASE_URL` and `REDIS_URL` set, the same code runs on PostgreSQL and Redis.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    home: Path = Field(Path(".trainq"), alias="TRAINQ_HOME", description="Folder of the embedded default")
    database_url: str | None = Field(None, alias="DATABASE_URL")
    redis_url: str | None = Field(None, alias="REDIS_URL")

    lease_seconds: float = Field(60.0, alias="TRAINQ_LEASE_SECONDS", gt=0)
    heartbeat_seconds: float = Field(5.0, alias="TRAINQ_HEARTBEAT_SECONDS", gt=0)
    # a running job's epochs are written together, at most this often (and at its end): one
    # statement for many epochs instead of a transaction for each (issue 10)
    report_interval_seconds: float = Field(0.25, alias="TRAINQ_REPORT_INTERVAL_SECONDS", ge=0)
    # A checkpoint at most this often (not every epoch). A worker's death already costs a
    # lease (60 s) before the takeover; re-running at most 10 s more of epochs adds little
    # to that, while a large model's checkpoint (weights and Adam's two slots: 120 MB for
    # 10M weights, a few tenths of a second to write) costs a few percent of 10 s of training.
    checkpoint_interval_seconds: float = Field(10.0, alias="TRAINQ_CHECKPOINT_INTERVAL_SECONDS", ge=0)
    # database connections each process keeps open (and as many more at a peak): the API runs
    # up to 40 requests at once in threads; a worker's pool process needs two or three
    database_pool_size: int = Field(20, alias="TRAINQ_DATABASE_POOL_SIZE", ge=1)
    requeue_after_seconds: float = Field(60.0, alias="TRAINQ_REQUEUE_AFTER_SECONDS", gt=0)
    # a warm shutdown waits this long for its running jobs to be handed back, then ends their
    # processes: long enough to stop a fit at its next batch and write the hand-back
    hand_back_seconds: float = Field(30.0, alias="TRAINQ_HAND_BACK_SECONDS", gt=0)
    # a job (or evaluation) whose worker was lost this many times ends failed instead of
    # being taken over again
    max_attempts: int = Field(5, alias="TRAINQ_MAX_ATTEMPTS", ge=1)
    max_request_bytes: int = Field(10 * 1024 * 1024, alias="TRAINQ_MAX_REQUEST_BYTES", gt=0)
    # past a limit (of a request or an upload), this much more of a body still being sent
    # is read and dropped, so that its client reads the 413 rather than a reset connection
    drain_bytes: int = Field(256 * 1024 * 1024, alias="TRAINQ_DRAIN_BYTES", ge=0)
    model_cache_size: int = Field(32, alias="TRAINQ_MODEL_CACHE_SIZE", ge=1)

    # --- datasets (issue 4) ---
    storage_url: str | None = Field(
        None,
        alias="TRAINQ_STORAGE_URL",
        description="Where datasets live: a folder, or s3://bucket/prefix; default TRAINQ_HOME/datasets",
    )
    max_dataset_bytes: int = Field(2 * 1024**3, alias="TRAINQ_MAX_DATASET_BYTES", gt=0)
    # a JSON upload is parsed whole ({x, y} has no streaming form): keep it small
    max_json_dataset_bytes: int = Field(16 * 1024 * 1024, alias="TRAINQ_MAX_JSON_DATASET_BYTES", gt=0)

    # --- the cluster (issue 6) ---
    worker_device: Literal["cpu", "gpu"] | None = Field(
        None,
        alias="TRAINQ_WORKER_DEVICE",
        description="The device kind a worker serves; unset: a CUDA GPU if one is seen, else the CPU",
    )
    array_library: Literal["numpy", "torch", "cupy"] | None = Field(
        None,
        alias="TRAINQ_ARRAY_LIBRARY",
        description="The engine's array library on a worker; unset: numpy on a CPU, cupy or torch on a GPU",
    )
    worker_heartbeat_seconds: float = Field(5.0, alias="TRAINQ_WORKER_HEARTBEAT_SECONDS", gt=0)
    worker_lost_after_seconds: float = Field(30.0, alias="TRAINQ_WORKER_LOST_AFTER_SECONDS", gt=0)
    max_sweep_points: int = Field(1000, alias="TRAINQ_MAX_SWEEP_POINTS", ge=1)

    # --- operations (issue 15) ---
    log_format: Literal["text", "json"] = Field(
        "text",
        alias="TRAINQ_LOG_FORMAT",
        description="text, or json: one JSON object per line, with job_id on the lines about a job",
    )
    worker_metrics_port: int | None = Field(
        None,
        alias="TRAINQ_WORKER_METRICS_PORT",
        ge=1,
        le=65535,
        description="Where a worker serves its Prometheus /metrics; unset: it serves none",
    )
    worker_metrics_host: str = Field(
        "127.0.0.1", alias="TRAINQ_WORKER_METRICS_HOST", description="The interface of a worker's /metrics"
    )

    # --- keys and tenants (issue 11) ---
    # what the command line and the Python client send; unset: the key in `key_file`
    api_key: SecretStr | None = Field(None, alias="TRAINQ_API_KEY")
    # the origins whose pages may call the API from a browser (comma-separated); none by default
    cors_origins: Annotated[list[str], NoDecode] = Field([], alias="TRAINQ_CORS_ORIGINS")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        origins = [origin.strip() for origin in value.split(",") if origin.strip()]
        for origin in origins:
            # what a browser sends as Origin: scheme://host[:port], nothing after
            if not re.fullmatch(r"https?://[^/\s]+", origin):
                raise ValueError(f"TRAINQ_CORS_ORIGINS: {origin!r} is not an origin such as https://app.example.com")
        return origins

    @model_validator(mode="after")
    def _heartbeats_outpace_their_deadlines(self) -> Settings:
        # A lease renewed less than twice within its span lapses on a live worker at the
        # first slow heartbeat, and another worker takes the job over while it still runs.
        if self.heartbeat_seconds * 2 > self.lease_seconds:
            raise ValueError(
                f"TRAINQ_HEARTBEAT_SECONDS ({self.heartbeat_seconds:g}) must be at most half of "
                f"TRAINQ_LEASE_SECONDS ({self.lease_seconds:g})"
            )
        if self.worker_heartbeat_seconds * 2 > self.worker_lost_after_seconds:
            raise ValueError(
                f"TRAINQ_WORKER_HEARTBEAT_SECONDS ({self.worker_heartbeat_seconds:g}) must be at most half of "
                f"TRAINQ_WORKER_LOST_AFTER_SECONDS ({self.worker_lost_after_seconds:g})"
            )
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            # postgresql:// means psycopg 3 here, whatever driver the URL's owner had in mind
            url = self.database_url
            for prefix in ("postgres://", "postgresql://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix) :]
            return url
        return f"sqlite:///{(self.home / 'trainq.db').resolve()}"

    @property
    def key_file(self) -> Path:
        """The admin key `trainq up` made on its first start, readable by its user only."""
        return self.home / "api-key"

    def local_api_key(self) -> str | None:
        """TRAINQ_API_KEY, else the key in `key_file`, else None."""
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        try:
            return self.key_file.read_text().strip() or None
        except OSError:
            return None

    @property
    def dataset_storage_url(self) -> str:
        return self.storage_url or str((self.home / "datasets").resolve())

    @property
    def broker_url(self) -> str:
        if self.redis_url:
            return self.redis_url
        return f"sqla+sqlite:///{(self.home / 'broker.db').resolve()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
