"""One cluster per test module: PostgreSQL, Redis and the API; the tests start the workers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.cluster.cluster import Cluster
from tests.support.postgres import PostgresServer


@pytest.fixture(scope="module")
def cluster(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster.start(postgres_server, tmp_path_factory.mktemp("cluster"), f"cluster_{uuid.uuid4().hex[:12]}")
    try:
        yield cluster
    finally:
        cluster.close()
