"""Alembic's entry point: the database comes from trainq's settings, the schema from its models.

`services.db.migrate` passes its Settings in `config.attributes["settings"]`; the `alembic`
command falls back to `get_settings()` (environment variables).
"""

from __future__ import annotations

from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import create_engine, pool

from trainq.services.db.models import Base
from trainq.services.db.session import make_sqlite_folder
from trainq.services.settings import Settings, get_settings

config = context.config

# only the `alembic` command configures logging; called from trainq, the caller's logging stays
if config.cmd_opts is not None and config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

settings: Settings = config.attributes.get("settings") or get_settings()
url = settings.sqlalchemy_url
target_metadata = Base.metadata
options: dict[str, Any] = dict(
    target_metadata=target_metadata,
    compare_type=True,
    # SQLite alters a table by copying it; Alembic's batch mode does that for us
    render_as_batch=url.startswith("sqlite"),
)


def run_migrations_offline() -> None:
    context.configure(url=url, literal_binds=True, dialect_opts={"paramstyle": "named"}, **options)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    # A plain engine, not trainq's: its SQLite connections turn foreign keys on, and a batch
    # migration that copies a parent table would then cascade-delete the children's rows.
    make_sqlite_folder(url)
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, **options)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
