"""The migrations build exactly the schema the models describe, and take it down again."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Column, Integer, MetaData, create_engine, inspect, text
from sqlalchemy.engine import Connection

from tests.conftest import settings_for
from trainq.services.db.migrate import downgrade, upgrade
from trainq.services.db.models import Base

TABLES = (
    {"jobs", "epochs", "checkpoints", "weights"}
    | {"datasets", "job_datasets", "evaluations"}
    | {"workers", "sweeps"}
    | {"models"}
    | {"tenants", "api_keys"}
    | {"job_batches"}
)


@pytest.fixture(params=["postgresql", "sqlite"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("new_postgres_database")(migrated=False)
    return f"sqlite:///{tmp_path / 'trainq.db'}"


def schema_difference(connection: Connection, metadata: MetaData) -> list:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return compare_metadata(context, metadata)


def tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return set(inspect(connection).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_to_head_then_downgrade_to_base_runs_clean(empty_database_url: str) -> None:
    settings = settings_for(empty_database_url)
    upgrade(settings)
    assert tables(empty_database_url) == TABLES | {"alembic_version"}
    downgrade(settings, "base")
    assert tables(empty_database_url) <= {"alembic_version"}
    upgrade(settings)
    assert tables(empty_database_url) == TABLES | {"alembic_version"}


def test_the_migrated_schema_is_the_models_schema(empty_database_url: str) -> None:
    upgrade(settings_for(empty_database_url))
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            assert schema_difference(connection, Base.metadata) == []
    finally:
        engine.dispose()


def test_the_schema_comparison_sees_a_column_the_migrations_lack(empty_database_url: str) -> None:
    """Proves the comparison above can fail: a model with one more column differs."""
    upgrade(settings_for(empty_database_url))
    metadata = MetaData()
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    metadata.tables["epochs"].append_column(Column("learning_rate", Integer, nullable=True))
    engine = create_engine(empty_database_url)
    try:
        with engine.connect() as connection:
            difference = schema_difference(connection, metadata)
    finally:
        engine.dispose()
    assert [(d[0], d[2], d[3].name) for d in difference] == [("add_column", "epochs", "learning_rate")]


def test_work_stored_before_tenants_belongs_to_the_default_tenant(empty_database_url: str) -> None:
    settings = settings_for(empty_database_url)
    upgrade(settings, "0006")
    engine = create_engine(empty_database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO sweeps (id, name, base_spec, device, space, points, metric, goal, created_at) "
                    "VALUES ('s1', NULL, '{}', 'auto', '{}', '[]', 'loss', 'min', CURRENT_TIMESTAMP)"
                )
            )
        upgrade(settings)
        with engine.connect() as connection:
            assert connection.execute(text("SELECT tenant FROM sweeps")).scalar_one() == "default"
    finally:
        engine.dispose()
