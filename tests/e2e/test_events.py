"""GET /v1/jobs/{id}/events against real jobs on PostgreSQL + Redis: every epoch once, in
order, the states around them, the end of the stream after the final state, and a client
that reconnects with Last-Event-ID missing nothing and seeing nothing twice."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import check_complete, history, long_spec, seed_spec, statuses_of, stream, submit

pytestmark = pytest.mark.e2e


def test_the_event_stream_pushes_each_epoch_once_and_ends_after_the_final_state(stack: Stack) -> None:
    stack.worker("events")
    with stack.client() as client:
        job = submit(client, seed_spec(epochs=300))
        events = stream(client, job["id"])
        rows = history(client, job["id"])

    check_complete(events, 300, [row["logs"] for row in rows])
    statuses = statuses_of(events)
    # the stream may open after the job started: it begins with the state it finds
    assert statuses[-1] == "succeeded" and statuses in (["queued", "running", "succeeded"], ["running", "succeeded"]), (
        statuses
    )
    assert events[0].event == "status"


def test_a_client_reconnecting_with_last_event_id_misses_nothing_and_sees_nothing_twice(stack: Stack) -> None:
    stack.worker("events")
    with stack.client() as client:
        job = submit(client, long_spec(epochs=150, samples=600))
        first = stream(client, job["id"], stop_after=20)
        assert first[-1].event == "epoch"
        rest = stream(client, job["id"], last_event_id=first[-1].id)
        rows = history(client, job["id"])
        # a client that saw the end and reconnects is told nothing more: the stream ends at once
        assert stream(client, job["id"], last_event_id=rest[-1].id) == []

    check_complete(first + rest, 150, [row["logs"] for row in rows])
    assert statuses_of(first + rest).count("running") == 1


def test_the_event_stream_of_an_unknown_job_is_404_and_a_foreign_last_event_id_is_422(stack: Stack) -> None:
    with stack.client() as client:
        assert client.get("/v1/jobs/no-such-job/events").status_code == 404
        job = submit(client, seed_spec(epochs=1))
        answer = client.get(f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "x"})
        assert answer.status_code == 422, answer.text
        assert answer.json()["errors"][0]["field"] == "Last-Event-ID"
