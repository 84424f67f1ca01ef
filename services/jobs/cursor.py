"""Opaque pagination cursors: the (created_at, id) of the last job of a page."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from trainq.services.errors import InvalidInput


def encode(created_at: datetime, job_id: str) -> str:
    raw = json.dumps([created_at.isoformat(), job_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        created_at = datetime.fromisoformat(created)
        if created_at.tzinfo is None or not isinstance(job_id, str):
            raise ValueError("not a trainq cursor")
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput("query.cursor", "is not a cursor this API handed out") from None
    return created_at, job_id
