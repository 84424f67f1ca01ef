"""The floor for bench/service.py: the smallest service of trainq's shape.

    uvicorn bench.floor:app
    celery -A bench.floor:celery_app worker --concurrency 1 --queues bench-floor

FastAPI takes `POST /v1/jobs`, inserts the row with SQLAlchemy Core on PostgreSQL,
commits and sends the id through Celery on Redis; a worker claims the row in one
transaction and ends it in another. The pool size and the Celery settings are trainq's.
It has no auth, no validation beyond a pydantic body, no training, no epochs or weights:
the bound a FastAPI + SQLAlchemy + Celery service on this PostgreSQL and Redis cannot
beat with trainq's settings. The distance from it to trainq is what trainq's features cost.

Its table is `jobs` in a database of its own (DATABASE_URL), apart from trainq's.
"""

from __future__ import annotations

import json
import os
import uuid
from functools import cache
from typing import Any

from celery import Celery
from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import Engine, create_engine, text

from bench.noop import BROKER_URL, SETTINGS
from trainq.services.settings import Settings

QUEUE = "bench-floor"
RUN = "bench.floor.run"
# trainq's default: each process keeps as many connections as its threads use at a peak
POOL_SIZE: int = Settings.model_fields["database_pool_size"].default

TABLE = """
CREATE TABLE jobs (
    id text PRIMARY KEY,
    status text NOT NULL,
    spec jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    started_at timestamptz,
    finished_at timestamptz
)
"""
INSERT = text("INSERT INTO jobs (id, status, spec) VALUES (:id, 'queued', :spec)")
# the status condition makes a redelivered message (acks_late) a no-op, as trainq's claim does
CLAIM = text(
    "UPDATE jobs SET status = 'running', started_at = now() WHERE id = :id AND status = 'queued' RETURNING spec"
)
END = text("UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = :id")


@cache
def engine() -> Engine:
    # made on first use: in a Celery pool process after the fork, never shared across it
    return create_engine(os.environ["DATABASE_URL"], pool_size=POOL_SIZE, max_overflow=POOL_SIZE)


def create_table(database_url: str) -> None:
    own = create_engine(database_url)
    try:
        with own.begin() as connection:
            connection.execute(text(TABLE))
    finally:
        own.dispose()


celery_app = Celery("floor", broker=BROKER_URL, set_as_current=False)
celery_app.conf.update(SETTINGS, task_default_queue=QUEUE)


class Spec(BaseModel):
    model: dict[str, Any]
    compile: dict[str, Any]
    fit: dict[str, Any]
    data: dict[str, Any] | None = None


app = FastAPI(title="trainq's floor")


# a plain def, as trainq's submit: FastAPI runs it in its thread pool
@app.post("/v1/jobs", status_code=201)
def submit(spec: Spec) -> dict[str, str]:
    job_id = str(uuid.uuid4())
    with engine().begin() as connection:
        connection.execute(INSERT, {"id": job_id, "spec": json.dumps(spec.model_dump())})
    # after the commit: a worker that takes the message finds the row
    celery_app.send_task(RUN, args=[job_id], queue=QUEUE)
    return {"id": job_id}


@celery_app.task(name=RUN)
def run(job_id: str) -> None:
    # two transactions, as trainq's claim and end: the claim is visible while the job "runs"
    with engine().begin() as connection:
        claimed = connection.execute(CLAIM, {"id": job_id}).first()
    if claimed is None:
        return
    with engine().begin() as connection:
        connection.execute(END, {"id": job_id})
