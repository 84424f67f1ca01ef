"""Keyset pages, newest first, for every list the API serves (jobs, datasets, sweeps, models).

A page is ordered by (created_at, id), both descending; its cursor is the opaque
(created_at, id) of its last row, and the next page starts strictly after it, so no row is
skipped or repeated while rows are added.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.orm import Session

from trainq.services.db.models import Dataset, Job, StoredModel, Sweep
from trainq.services.errors import InvalidInput

# the most rows one page holds (the API's `limit` is checked against it)
MAX_PAGE = 200

Listed = TypeVar("Listed", Job, Dataset, Sweep, StoredModel)


def page(
    session: Session, query: Select[Any], model: type[Listed], *, cursor: str | None, limit: int
) -> tuple[list[Listed], str | None]:
    """Up to `limit` rows of `query` after `cursor` (None: from the newest), and the next
    page's cursor (None on the last)."""
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidInput("query.limit", f"must be between 1 and {MAX_PAGE}")
    if cursor is not None:
        created_at, last_id = decode(cursor)
        query = query.where(
            or_(model.created_at < created_at, and_(model.created_at == created_at, model.id < last_id))
        )
    query = query.order_by(model.created_at.desc(), model.id.desc()).limit(limit + 1)
    rows = list(session.execute(query).scalars())
    if len(rows) <= limit:
        return rows, None
    rows = rows[:limit]
    return rows, encode(rows[-1].created_at, rows[-1].id)


def encode(created_at: datetime, row_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, row_id = json.loads(raw)
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None or not isinstance(row_id, str):
            raise ValueError("not a trainq cursor")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("query.cursor", "is not a cursor this API handed out") from None
    return created_at, row_id
