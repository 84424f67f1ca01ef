"""`trainq up` with nothing configured: SQLite and Celery's SQLAlchemy transport in TRAINQ_HOME."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.jobs import check_trained_line, seed_spec, submit, watch_until_finished
from tests.support.processes import Api, Processes

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Processes, Path]]:
    folder = tmp_path_factory.mktemp("embedded")
    processes = Processes(folder / "logs")
    try:
        api = processes.up({"TRAINQ_HOME": str(folder / "home")}, workers=1)
        yield api, processes, folder / "home"
    finally:
        processes.stop_all()


def test_seed_job_succeeds_on_the_embedded_default(embedded: tuple[Api, Processes, Path]) -> None:
    api, processes, home = embedded
    spec = seed_spec()
    with api.client() as client:
        assert client.get("/readyz").json() == {"database": "ok", "broker": "ok"}
        job = submit(client, spec)
        seen, final = watch_until_finished(client, job["id"], timeout=60, processes=processes)
        assert seen == ["queued", "running", "succeeded"], seen
        check_trained_line(client, final, spec)
    # everything lived in TRAINQ_HOME: no external service was configured
    assert (home / "trainq.db").is_file() and (home / "broker.db").is_file()
