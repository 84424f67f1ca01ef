"""A job's page in a real headless Chromium, network cut off but for loopback: a loss that
spans more than two decades opens on a log scale, a person's choice of scale is kept in
the URL and outlives a reload, epochs are numbered from 0 as the API numbers them on
whole-number ticks, speed is shown, and the history downloads as CSV."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Stack, cut_off_network
from tests.e2e.jobs import seed_spec, submit, wait_for_status
from tests.e2e.test_dashboard import SEEN_MS, wait_for_points
from tests.support.keys import with_key

pytestmark = pytest.mark.e2e


def job_page(browser: Browser, stack: Stack, job_id: str, query: str = "") -> Page:
    assert stack.api is not None
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    refused = cut_off_network(page)
    # the key first, as `trainq up` prints it (kept by the tab), then the job
    page.goto(with_key(stack.api.base_url))
    expect(page.locator("table.jobs")).to_be_visible(timeout=SEEN_MS)
    page.goto(f"{stack.api.base_url}/#/jobs/{job_id}{query}")
    assert refused == []
    return page


def y_scale(page: Page) -> int:
    """uPlot's distribution of the y scale: 1 linear, 3 logarithmic."""
    return int(page.evaluate("window.trainqChart.scales.y.distr"))


def test_the_loss_curve_opens_on_a_log_scale_when_it_spans_decades_and_keeps_a_choice_in_the_url(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    assert stack.api is not None
    stack.worker("page")
    with stack.client() as client:
        falling = submit(client, seed_spec(epochs=200))
        short = submit(client, seed_spec(epochs=3))
        for job in (falling, short):
            wait_for_status(client, job["id"], "succeeded", timeout=90, processes=stack.processes)
        losses = [row["logs"]["loss"] for row in client.get(f"/v1/jobs/{falling['id']}/history").json()["epochs"]]
    assert max(losses) / min(losses) > 100, "the test needs a loss that spans more than two decades"

    page = job_page(browser, stack, falling["id"])
    wait_for_points(page, lambda n: n == 200, "all 200 epochs are plotted")
    expect(page.locator("#log-scale")).to_be_checked(timeout=SEEN_MS)
    assert y_scale(page) == 3
    # numbered as the API numbers them, on whole-number ticks
    assert page.evaluate("[window.trainqChart.data[0][0], window.trainqChart.data[0].at(-1)]") == [0, 199]
    ticks = [label for label in page.evaluate("window.trainqChart.axes[0]._values") if label]
    assert ticks and all(label.isdigit() for label in ticks), ticks
    expect(page.get_by_text("epochs/s")).to_be_visible()

    # the history as CSV: what `trainq history --csv` writes
    with page.expect_download() as download:
        page.locator("#history-csv").click()
    rows = list(csv.reader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows[0] == ["epoch", "loss", "val_loss", "mae", "val_mae", "wallTime"]
    assert [int(row[0]) for row in rows[1:]] == list(range(200))
    assert [float(row[1]) for row in rows[1:]] == losses

    # a person's choice goes into the URL and outlives a reload
    page.locator("#log-scale").uncheck()
    assert "log=0" in page.url and y_scale(page) == 1
    page.reload()
    wait_for_points(page, lambda n: n == 200, "the epochs are plotted again")
    expect(page.locator("#log-scale")).not_to_be_checked()
    assert y_scale(page) == 1

    # a loss within two decades opens linear; ?log=1 opens it on a log scale
    page = job_page(browser, stack, short["id"])
    wait_for_points(page, lambda n: n == 3, "the short job's epochs are plotted")
    expect(page.locator("#log-scale")).not_to_be_checked()
    page = job_page(browser, stack, short["id"], "?log=1")
    wait_for_points(page, lambda n: n == 3, "the short job's epochs are plotted")
    expect(page.locator("#log-scale")).to_be_checked()
    assert y_scale(page) == 3


def test_jobs_ticked_in_the_list_are_compared_on_one_chart(stack: Stack, browser: Browser) -> None:
    assert stack.api is not None
    stack.worker("compare")
    with stack.client() as client:
        jobs = [submit(client, {**seed_spec(epochs=epochs), "name": f"run {epochs}"}) for epochs in (4, 6)]
        for job in jobs:
            wait_for_status(client, job["id"], "succeeded", timeout=60, processes=stack.processes)
        histories = [client.get(f"/v1/jobs/{job['id']}/history").json()["epochs"] for job in jobs]

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    refused = cut_off_network(page)
    page.goto(with_key(stack.api.base_url))
    for job in jobs:
        page.locator(f'tr[data-job-id="{job["id"]}"] input.pick').check(timeout=SEEN_MS)
    page.locator("#compare-jobs").click()

    wait_for_points(page, lambda n: n == 6, "the longer job's epochs are plotted")
    plotted = page.evaluate("window.trainqChart.data.map((column) => Array.from(column))")
    labels = page.evaluate("window.trainqChart.series.slice(1).map((s) => s.label)")
    assert labels == ["run 4", "run 6"]
    assert plotted[0] == list(range(6))
    assert plotted[1][:4] == [row["logs"]["loss"] for row in histories[0]] and plotted[1][4:] == [None, None]
    assert plotted[2] == [row["logs"]["loss"] for row in histories[1]]
    assert refused == []


def test_clone_opens_the_spec_in_an_editor_shows_errors_by_field_and_submits_a_new_job(
    stack: Stack, browser: Browser
) -> None:
    assert stack.api is not None
    stack.worker("clone")
    with stack.client() as client:
        original = submit(client, {**seed_spec(epochs=3), "name": "original"})
        wait_for_status(client, original["id"], "succeeded", timeout=60, processes=stack.processes)

    page = job_page(browser, stack, original["id"])
    page.locator("#clone-job").click(timeout=SEEN_MS)
    spec = json.loads(page.locator("#clone-spec").input_value())
    assert spec["name"] == "original (clone)" and spec["fit"]["epochs"] == 3 and "data" in spec

    spec["fit"]["epochs"] = -1
    page.locator("#clone-spec").fill(json.dumps(spec))
    page.get_by_role("button", name="Submit as a new job").click()
    refused = page.locator('#clone-errors li[data-field="fit.epochs"]')
    expect(refused).to_have_text("fit.epochs: Input should be greater than 0", timeout=SEEN_MS)
    assert page.locator("#clone-errors li").count() == 1

    spec["fit"]["epochs"] = 2
    page.locator("#clone-spec").fill(json.dumps(spec))
    page.get_by_role("button", name="Submit as a new job").click()
    expect(page.locator("h1")).to_have_text("original (clone)", timeout=SEEN_MS)
    clone_id = page.url.rsplit("/", 1)[-1]
    assert clone_id != original["id"]
    with stack.client() as client:
        cloned = wait_for_status(client, clone_id, "succeeded", timeout=60, processes=stack.processes)
    assert cloned["progress"]["epochs"] == 2
