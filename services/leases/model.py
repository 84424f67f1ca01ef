"""The columns every table of leased work has, as a model mixin."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import Integer, String, Text, false
from sqlalchemy.orm import Mapped, mapped_column


class Leased:
    """Mixed into a model (beside `Base`): the row's id, status, lease and when it moved.

    A model may declare a column of its own in place of one of these (evaluations add a
    server default to `attempt`: migration 0004 added the column to a filled table)."""

    # the work's name in messages and logs: "job", "evaluation"
    kind: ClassVar[str]

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    # raised by every claim; a worker's writes carry its attempt, so a stale worker is fenced off
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    lease_expires_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # the last time a broker message was sent for it; the requeue sweep reads it
    enqueued_at: Mapped[datetime | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    if TYPE_CHECKING:
        # each model declares its own (with its default); the sweep sends the oldest first
        created_at: Mapped[datetime]

    @classmethod
    def cancel_flag(cls) -> Any:
        """The column a heartbeat reads to learn that a person asked the work to stop;
        by default nobody can."""
        return false()
