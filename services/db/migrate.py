"""Apply the Alembic migrations in `migrations/` from Python (`trainq db upgrade`, `trainq up`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from services.settings import Settings, get_settings

# the repository's top level, where alembic.ini and migrations/ live
ROOT = Path(__file__).resolve().parents[2]


def alembic_config(settings: Settings | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.attributes["settings"] = settings or get_settings()
    return config


def upgrade(settings: Settings | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings | None, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)
