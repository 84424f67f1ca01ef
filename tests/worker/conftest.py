"""A real SQLite database migrated by Alembic for each test, and settings pointing at it.

Heartbeats are fast here so that cancelling and taking over happen within a test's second.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from services.db.migrate import upgrade
from services.db.session import create_engine_for
from services.settings import Settings

SEED: dict[str, Any] = {
    "model": {"layers": [{"units": 1, "inputShape": [1]}]},
    "compile": {"optimizer": {"name": "sgd", "learningRate": 0.01}, "loss": "meanAbsoluteError"},
    "fit": {"epochs": 5, "batchSize": 32, "seed": 7},
    "data": {"x": [[0.1], [0.5], [0.9], [1.3], [1.7]], "y": [[1.2], [2.0], [2.8], [3.6], [4.4]]},
}


def settings_at(folder: Path, **values: Any) -> Settings:
    return Settings(
        TRAINQ_HOME=folder,
        DATABASE_URL=f"sqlite:///{folder / 'trainq.db'}",
        TRAINQ_HEARTBEAT_SECONDS=0.05,
        TRAINQ_LEASE_SECONDS=5,
        **values,
    )


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("migrated")
    upgrade(settings_at(folder))
    return folder / "trainq.db"


@pytest.fixture
def settings(tmp_path: Path, _migrated_sqlite: Path) -> Settings:
    shutil.copyfile(_migrated_sqlite, tmp_path / "trainq.db")
    return settings_at(tmp_path)


@pytest.fixture
def factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(settings)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()
