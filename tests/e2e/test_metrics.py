"""Prometheus scrapes the API's /metrics and a worker's after jobs ran on the real stack:
jobs by status from the database, the queue's depth from Redis, requests by route
template; the worker's jobs finished by status, one epoch time per epoch it recorded and
(reporting every epoch) one report time per epoch, no resumes."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Stack
from tests.e2e.jobs import history, seed_spec, submit, wait_for_status
from tests.support.processes import free_port

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    answer = httpx.get(url, timeout=10)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in samples, f"{name}{labels} is not scraped; scraped: {sorted({n for n, _ in samples})}"
    return samples[key]


def diverging_spec() -> dict[str, object]:
    spec = seed_spec(epochs=5)
    spec["compile"] = {"optimizer": {"name": "sgd", "learningRate": 1e30}, "loss": "meanSquaredError"}
    return spec


def test_the_api_and_a_worker_expose_what_happened_to_their_jobs(stack: Stack) -> None:
    assert stack.api is not None
    port = free_port()
    # a report per epoch, so that the worker's report count is its epoch count
    stack.worker("metrics", {"TRAINQ_WORKER_METRICS_PORT": str(port), "TRAINQ_REPORT_INTERVAL_SECONDS": "0"})
    with stack.client() as client:
        good = [submit(client, seed_spec(epochs=epochs)) for epochs in (3, 4)]
        bad = submit(client, diverging_spec())
        for job in good:
            wait_for_status(client, job["id"], "succeeded", timeout=60, processes=stack.processes)
        wait_for_status(client, bad["id"], "failed", timeout=60, processes=stack.processes)
        epochs_recorded = sum(len(history(client, job["id"])) for job in [*good, bad])
        worker = scrape(f"http://127.0.0.1:{port}/metrics")

        stack.stop_workers()
        # with no worker left, a job waits on the shared queue, and one is cancelled before it starts
        waiting = submit(client, seed_spec(epochs=3))
        cancelled = submit(client, seed_spec(epochs=3))
        assert client.post(f"/v1/jobs/{cancelled['id']}/cancel").status_code == 202
        assert client.get(f"/v1/jobs/{waiting['id']}").status_code == 200
    api = scrape(stack.api.base_url + "/metrics")

    assert value(worker, "trainq_jobs_finished_total", status="succeeded") == 2
    assert value(worker, "trainq_jobs_finished_total", status="failed") == 1
    assert ("trainq_jobs_finished_total", frozenset({("status", "cancelled")})) not in worker
    assert epochs_recorded >= 7
    assert value(worker, "trainq_epoch_seconds_count") == epochs_recorded
    assert 0 < value(worker, "trainq_epoch_seconds_sum") < 60
    assert value(worker, "trainq_epoch_seconds_bucket", le="+Inf") == epochs_recorded
    assert value(worker, "trainq_report_seconds_count") == epochs_recorded
    assert value(worker, "trainq_job_resumes_total") == 0

    assert {status: value(api, "trainq_jobs", status=status) for status in ("queued", "running", "succeeded")} == {
        "queued": 1,
        "running": 0,
        "succeeded": 2,
    }
    assert value(api, "trainq_jobs", status="failed") == 1
    assert value(api, "trainq_jobs", status="cancelled") == 1
    # the waiting job's message, and the cancelled one's (a worker drops it when it takes it)
    assert value(api, "trainq_queue_depth", queue="trainq") == 2
    assert value(api, "trainq_queue_depth", queue="trainq.cpu") == 0
    assert value(api, "http_requests_total", handler="/v1/jobs", method="POST", status="2xx") == 5
    assert value(api, "http_requests_total", handler="/v1/jobs/{job_id}/cancel", method="POST", status="2xx") == 1
    assert value(api, "http_request_duration_seconds_count", handler="/v1/jobs", method="POST") == 5
