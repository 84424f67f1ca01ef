"""A real SQLite database migrated by Alembic for each test, and settings pointing at it.

Heartbeats are fast here so that cancelling and taking over happen within a test's second.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.conftest import sqlite_settings
from trainq.services.db.session import create_engine_for
from trainq.services.settings import Settings

SEED: dict[str, Any] = {
    "model": {"layers": [{"units": 1, "inputShape": [1]}]},
    "compile": {"optimizer": {"name": "sgd", "learningRate": 0.01}, "loss": "meanAbsoluteError"},
    "fit": {"epochs": 5, "batchSize": 32, "seed": 7},
    "data": {"x": [[0.1], [0.5], [0.9], [1.3], [1.7]], "y": [[1.2], [2.0], [2.8], [3.6], [4.4]]},
}


@pytest.fixture
def settings(sqlite_home: Path) -> Settings:
    return sqlite_settings(sqlite_home, TRAINQ_HEARTBEAT_SECONDS=0.05, TRAINQ_LEASE_SECONDS=5)


@pytest.fixture
def factory(settings: Settings) -> Iterator[sessionmaker[Session]]:
    engine = create_engine_for(settings)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()
