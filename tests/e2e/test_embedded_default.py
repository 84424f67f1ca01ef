"""`trainq up` with nothing configured: SQLite and Celery's SQLAlchemy transport in TRAINQ_HOME."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.jobs import (
    check_complete,
    check_trained_line,
    check_went_through_running,
    history,
    seed_spec,
    stream,
    submit,
    watch_until_finished,
)
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
        check_went_through_running(seen, final)
        check_trained_line(client, final, spec)
    # everything lived in TRAINQ_HOME: no external service was configured
    assert (home / "trainq.db").is_file() and (home / "broker.db").is_file()


def test_the_first_start_saves_an_admin_key_for_its_user_only_and_prints_the_dashboard_url_with_it(
    embedded: tuple[Api, Processes, Path],
) -> None:
    api, processes, home = embedded
    path = home / "api-key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = path.read_text().strip()
    assert f"dashboard at {api.base_url}/#key={key}" in processes.started[0].log()
    assert httpx.get(f"{api.base_url}/v1/jobs", timeout=30).status_code == 401
    with api.client() as client:
        assert client.get("/v1/jobs").status_code == 200


def test_the_event_stream_pushes_every_epoch_on_the_embedded_default(embedded: tuple[Api, Processes, Path]) -> None:
    api, _, _ = embedded
    with api.client() as client:
        job = submit(client, seed_spec(epochs=100))
        events = stream(client, job["id"], stop_after=10)
        events += stream(client, job["id"], last_event_id=events[-1].id)
        logs = [row["logs"] for row in history(client, job["id"])]
    check_complete(events, 100, logs)


def test_up_prefixes_each_line_with_its_process_and_the_worker_says_no_root_warning(
    embedded: tuple[Api, Processes, Path],
) -> None:
    _, processes, _ = embedded
    lines = processes.started[0].log().splitlines()
    api_lines = [line for line in lines if line.startswith("api      | ")]
    worker_lines = [line for line in lines if line.startswith("worker-1 | ")]
    assert any("Uvicorn running on" in line for line in api_lines), lines
    assert any("ready." in line for line in worker_lines), lines
    # this machine runs the tests as root: Celery would warn, and trainq says why it need not
    assert not any("superuser privileges" in line for line in lines), lines
