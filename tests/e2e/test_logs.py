"""TRAINQ_LOG_FORMAT=json on the real stack: the worker and the API write one JSON object
per line, and the worker's lines about a job carry its id in `job_id`."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import seed_spec, submit, wait_for_status

pytestmark = pytest.mark.e2e


# what Celery prints itself, to the terminal rather than through logging, as it stops
CELERY_PRINTS = ("worker: Warm shutdown (MainProcess)",)


def json_lines(log: str) -> list[dict[str, object]]:
    documents = []
    for line in log.splitlines():
        if line.strip() and line.strip() not in CELERY_PRINTS:
            documents.append(json.loads(line))  # a line that is not JSON fails the test here
    return documents


def test_json_logs_carry_the_job_id_on_the_lines_about_a_job(stack: Stack) -> None:
    assert stack.api is not None
    worker = stack.worker("json", {"TRAINQ_LOG_FORMAT": "json"})
    with stack.client() as client:
        job = submit(client, seed_spec(epochs=3))
        wait_for_status(client, job["id"], "succeeded", timeout=60, processes=stack.processes)
    stack.stop_workers()

    lines = json_lines(worker.log())
    assert {"time", "level", "logger", "process", "message"} <= set(lines[0])
    about = [line for line in lines if job["id"] in str(line["message"])]
    assert about, "the worker logged nothing about the job"
    assert all(line.get("job_id") == job["id"] for line in about), about
    assert any("succeeded" in str(line["message"]) for line in about), about
    assert not any("superuser privileges" in str(line["message"]) for line in lines)


def test_the_api_logs_json_lines_too(stack: Stack) -> None:
    api = stack.processes.api({**stack.env, "TRAINQ_LOG_FORMAT": "json"}, name="api-json")
    with api.client() as client:
        assert client.get("/v1/jobs").status_code == 200
    lines = json_lines(api.process.log())
    assert any(line["logger"] == "uvicorn.error" for line in lines), lines
    assert any(line["logger"] == "uvicorn.access" and "/v1/jobs" in str(line["message"]) for line in lines), lines
