"""The INSERT of the session's dialect: PostgreSQL's and SQLite's both know ON CONFLICT,
which SQLAlchemy's generic insert does not."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from trainq.services.db.models import Base


def insert(session: Session, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(model)
    return sqlite.insert(model)
