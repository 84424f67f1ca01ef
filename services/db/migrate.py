"""Apply the Alembic migrations in `migrations/` from Python (`trainq db upgrade`, `trainq up`)."""

from __future__ import annotations

from importlib.resources import files

from alembic import command
from alembic.config import Config

from trainq.services.settings import Settings, get_settings


def alembic_config(settings: Settings | None = None) -> Config:
    # the migrations are installed with trainq (trainq.migrations), so an installed wheel
    # migrates as a checkout does; alembic.ini serves only the `alembic` command
    config = Config()
    config.set_main_option("script_location", str(files("trainq.migrations")))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["settings"] = settings or get_settings()
    return config


def upgrade(settings: Settings | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: Settings | None, revision: str) -> None:
    command.downgrade(alembic_config(settings), revision)
