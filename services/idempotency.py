"""Idempotency-Key: a request that stores work (a job, a batch of jobs, a sweep), made again
with the same key and body, answers with what the first one stored instead of storing it
twice; the key with another body is refused (409). Keys are unique per tenant and per kind
of request: each kind keeps its keys, with the hash of the request that used each, on the
row that request stored (`jobs`, `job_batches`, `sweeps`)."""

from __future__ import annotations

import hashlib
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from trainq.services.db.models import IDEMPOTENCY_KEY_MAX_LENGTH, Job, JobBatch, Sweep
from trainq.services.db.upsert import insert
from trainq.services.errors import IdempotencyKeyReused, InvalidInput
from trainq.services.inline_data import json_text

Keyed = TypeVar("Keyed", Job, JobBatch, Sweep)


def hash_request(request: Any) -> str:
    """sha256 of a request's canonical JSON: a retry formatted otherwise hashes the same,
    a retry with another body does not."""
    canonical = json_text(request, sort_keys=True, compact=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def insert_once(session: Session, model: type[Keyed], values: dict[str, Any]) -> Keyed | None:
    """Insert the row `values` (its tenant, idempotency_key and request_hash among them)
    unless the tenant used the key before: None if inserted, else the row stored with it,
    if for the same request (another: IdempotencyKeyReused).

    ON CONFLICT DO NOTHING: a request racing with the key waits on the unique index (on
    SQLite, for the one writer) and then finds the first one's row, so neither fails; if the
    first rolls back, the second inserts its own."""
    key = values["idempotency_key"]
    if not 0 < len(key) <= IDEMPOTENCY_KEY_MAX_LENGTH:
        raise InvalidInput("header.Idempotency-Key", f"between 1 and {IDEMPOTENCY_KEY_MAX_LENGTH} characters")
    inserted = session.execute(
        insert(session, model)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["tenant", "idempotency_key"])
        .returning(model.tenant)
    ).scalar_one_or_none()
    if inserted is not None:
        return None
    earlier = session.execute(
        select(model).where(model.tenant == values["tenant"], model.idempotency_key == key)
    ).scalar_one()
    if earlier.request_hash != values["request_hash"]:
        raise IdempotencyKeyReused(key)
    return earlier
