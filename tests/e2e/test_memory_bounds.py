"""The API process's memory under large bodies, measured as its peak resident set (VmHWM):
16 concurrent 9.5 MB inline submits keep it under 1 GB (large bodies are admitted a few at
a time), and a 2 GB CSV stream with no newline is a 422 naming the header without the
process growing by more than a small fraction of it; a data row with no newline, a 422
naming the row, past the row limit (16 MiB), not the dataset's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import Stack
from tests.support.processes import Api
from trainq.services.datasets.formats import CSV_ROW_MAX_CHARS
from trainq.services.spec import SEED_EXAMPLE

pytestmark = pytest.mark.e2e

MIB = 1024 * 1024
CONCURRENT_SUBMITS = 16
ROWS = 680_000  # x = y = 680,000 rows of one number: a 9.5 MB body
PEAK_BOUND_BYTES = 1024 * MIB
SINGLE_BODY_MULTIPLE = 8  # measured 5.3x (47 MiB for 8.9 MiB); 52.7x before bodies were parsed straight into arrays
SMALL_JOB = {**SEED_EXAMPLE, "fit": {**SEED_EXAMPLE["fit"], "epochs": 1}}
CSV_STREAM_BYTES = 2 * 1024**3
CSV_GROWTH_BOUND_BYTES = 200 * MIB
# many times the row limit, so that reading the row whole would show in the peak
CSV_ROW_STREAM_BYTES = 256 * MIB
CSV_ROW_GROWTH_BOUND_BYTES = 100 * MIB


def peak_rss(pid: int) -> int:
    """The process's peak resident set size so far (VmHWM), in bytes."""
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def large_body() -> bytes:
    rows = ",".join(f"[{(i % 100) / 100}]" for i in range(ROWS))
    spec = {
        "model": {"layers": [{"units": 1, "inputShape": [1]}]},
        "compile": {"optimizer": "sgd", "loss": "meanSquaredError"},
        "fit": {"epochs": 1, "batchSize": 4096},
    }
    document = json.dumps(spec)[:-1] + f', "data": {{"x": [{rows}], "y": [{rows}]}}}}'
    return document.encode()


def test_one_large_inline_submit_costs_the_api_a_small_multiple_of_its_size(stack: Stack) -> None:
    assert stack.api is not None
    pid = stack.api.process.pid
    body = large_body()
    with stack.api.client(timeout=300) as client:
        # the first submit warms what any submit loads (imports, the connection pool)
        assert client.post("/v1/jobs", json=SMALL_JOB).status_code == 201
        before = reset_peak_rss(pid)
        response = client.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
    grown = peak_rss(pid) - before
    print(
        f"\none submit of {len(body) / MIB:.1f} MiB: API peak {grown / MIB:.0f} MiB above before "
        f"({grown / len(body):.1f} times the body)"
    )
    assert response.status_code == 201, response.text
    assert grown < SINGLE_BODY_MULTIPLE * len(body)


def test_sixteen_concurrent_large_inline_submits_keep_the_api_under_one_gigabyte(stack: Stack) -> None:
    assert stack.api is not None
    pid = stack.api.process.pid
    body = large_body()
    assert 9_000_000 < len(body) < 10 * MIB  # under the API's request limit
    before = rss(pid)

    def submit(_: int) -> int:
        assert stack.api is not None
        with stack.api.client(timeout=300) as client:
            return client.post("/v1/jobs", content=body, headers={"content-type": "application/json"}).status_code

    with ThreadPoolExecutor(CONCURRENT_SUBMITS) as pool:
        statuses = list(pool.map(submit, range(CONCURRENT_SUBMITS)))
    peak = peak_rss(pid)
    print(
        f"\n{CONCURRENT_SUBMITS} concurrent submits of {len(body) / MIB:.1f} MiB: API resident "
        f"{before / MIB:.0f} MiB before, peak {peak / MIB:.0f} MiB, {rss(pid) / MIB:.0f} MiB after"
    )
    assert statuses == [201] * CONCURRENT_SUBMITS
    assert peak < PEAK_BOUND_BYTES


def reset_peak_rss(pid: int) -> int:
    """Lower the process's peak resident set to its current one (Linux's clear_refs), so that
    an earlier test's peak cannot hide this one's; returns it."""
    with open(f"/proc/{pid}/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return peak_rss(pid)


def upload_stream(api: Api, first: bytes, total: int) -> tuple[int, dict, int]:
    """POST /v1/datasets of `first`, then bytes "1" up to `total` bytes, no newline: the status,
    the answer and how much the API's peak resident set grew meanwhile."""
    before = reset_peak_rss(api.process.pid)
    chunk = b"1" * MIB

    def stream() -> Iterator[bytes]:
        yield first
        for _ in range((total - len(first)) // MIB):
            yield chunk

    with api.client(timeout=600) as client:
        response = client.post("/v1/datasets", content=stream(), headers={"content-type": "text/csv"})
    return response.status_code, response.json(), peak_rss(api.process.pid) - before


def test_a_two_gigabyte_csv_stream_with_no_newline_is_422_naming_the_header_in_bounded_memory(stack: Stack) -> None:
    assert stack.api is not None
    status, answer, grown = upload_stream(stack.api, b"a", CSV_STREAM_BYTES)
    print(f"\n2 GiB CSV stream with no newline: {status}, API peak grew by {grown / MIB:.0f} MiB")
    assert status == 422, answer
    assert answer["errors"][0]["message"].startswith("line 1, the header row")
    assert grown < CSV_GROWTH_BOUND_BYTES


def test_a_csv_data_row_with_no_newline_is_422_naming_the_row_in_bounded_memory(stack: Stack) -> None:
    assert stack.api is not None
    assert CSV_ROW_STREAM_BYTES > 8 * CSV_ROW_MAX_CHARS
    status, answer, grown = upload_stream(stack.api, b"x,y\n0.5,2\n1,", CSV_ROW_STREAM_BYTES)
    print(
        f"\n{CSV_ROW_STREAM_BYTES // MIB} MiB CSV row with no newline: {status}, API peak grew by {grown / MIB:.0f} MiB"
    )
    assert status == 422, answer
    error = answer["errors"][0]
    assert error["field"] == "file", error
    assert error["message"].startswith(f"row 1 (line 3) is longer than {CSV_ROW_MAX_CHARS} characters"), error
    assert grown < CSV_ROW_GROWTH_BOUND_BYTES
