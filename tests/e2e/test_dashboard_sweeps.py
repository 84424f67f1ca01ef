"""A sweep in the dashboard, in Debian's Chromium against the real stack: the sweeps page
lists it live, its page ranks the jobs as the API ranks them and plots one curve per job
with one point per epoch, a job links back to its sweep, and the cancel button ends a
running sweep's jobs. Each page is saved under test-artifacts/ as a screenshot.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import Stack
from tests.e2e.jobs import long_spec, seed_spec
from tests.e2e.test_dashboard import (
    HEARTBEAT,
    PHONE,
    SEEN_MS,
    open_page,
    screenshot,
)
from tests.support.processes import wait_for

pytestmark = pytest.mark.e2e

HOSTILE_NAME = '<img src=x onerror="alert(1)"> lr × batch'
GRID: dict[str, list[Any]] = {"compile.optimizer.learningRate": [0.1, 0.02], "fit.batchSize": [20, 40]}
EPOCHS = 12


def create_sweep(client: httpx.Client, base: dict[str, Any], grid: dict[str, list[Any]], name: str) -> dict[str, Any]:
    base = {key: value for key, value in base.items() if key != "name"}
    response = client.post("/v1/sweeps", json={"name": name, "base": base, "grid": grid, "device": "cpu"})
    assert response.status_code == 201, response.text
    return response.json()


def watch_errors(page: Page, errors: list[str]) -> Page:
    """Collect the page's uncaught script errors (a chart that throws while drawing, say)."""
    page.on("pageerror", lambda error: errors.append(str(error)))
    return page


def short(path: str) -> str:
    return path.rsplit(".", 1)[-1]


def plotted(page: Page) -> tuple[list[str], list[list[float | None]]]:
    """The chart's curve labels and its columns (epochs first, then one per curve)."""
    return (
        page.evaluate("window.trainqChart ? window.trainqChart.series.slice(1).map((s) => s.label) : []"),
        page.evaluate("window.trainqChart ? window.trainqChart.data.map((column) => Array.from(column)) : []"),
    )


def curve_lengths(page: Page) -> list[int]:
    """Per curve, how many epochs it plots."""
    return [sum(v is not None for v in column) for column in plotted(page)[1][1:]]


def test_a_sweep_is_listed_ranked_and_plotted_one_curve_per_job_and_its_cancel_button_ends_it(
    stack: Stack, browser: Browser, dialogs: list[str]
) -> None:
    assert stack.api is not None
    stack.worker("sweeps", HEARTBEAT)
    errors: list[str] = []
    page = watch_errors(open_page(browser, stack.api.base_url + "/#/sweeps", dialogs), errors)
    expect(page.get_by_text("No sweeps yet.")).to_be_visible(timeout=SEEN_MS)
    expect(page.locator("nav a.active")).to_have_text("Sweeps")

    with stack.api.client() as client:
        created = create_sweep(client, seed_spec(epochs=EPOCHS), GRID, HOSTILE_NAME)
        row = page.locator(f'table.sweeps tr[data-sweep-id="{created["id"]}"]')
        expect(row.locator(".job-name")).to_have_text(HOSTILE_NAME, timeout=SEEN_MS)
        expect(row.locator(".counts-words")).to_have_text("4 succeeded", timeout=SEEN_MS)
        expect(row.locator(".bar-label")).to_have_text("4 / 4")
        sweep = client.get(created["links"]["self"]).json()
        best = sweep["jobs"][0]
        assert best["rank"] == 1
        expect(row.locator(".best-value")).to_contain_text("val_loss")
        assert math.isclose(float(row.locator(".best-value").inner_text().split()[-1]), best["value"], rel_tol=1e-3)
        screenshot(page, "sweeps")

        row.locator(".job-name").click()
        expect(page.locator(".sweep h1")).to_have_text(HOSTILE_NAME, timeout=SEEN_MS)
        # ranked as the API ranks it: the same jobs in the same order, the same ranks and values
        ranking = page.locator("table.ranking tbody tr")
        expect(ranking).to_have_count(4)
        assert [r.get_attribute("data-job-id") for r in ranking.all()] == [e["job"]["id"] for e in sweep["jobs"]]
        assert page.locator("table.ranking .rank").all_inner_texts() == [str(e["rank"]) for e in sweep["jobs"]]
        for shown, entry in zip(page.locator("table.ranking td.value").all_inner_texts(), sweep["jobs"], strict=True):
            assert math.isclose(float(shown), entry["value"], rel_tol=1e-5)
        # a column per parameter (in the order the API gives a point's paths), named by its last part
        heads = page.locator("table.ranking th").all_inner_texts()
        assert [text.lower() for text in heads[1:3]] == [short(path).lower() for path in best["point"]]
        assert ranking.first.locator("td.param").all_inner_texts() == [str(v) for v in best["point"].values()]

        # one curve per job, in point order, named by its point, with one point per epoch
        wait_for(
            lambda: curve_lengths(page) == [EPOCHS] * 4,
            timeout=SEEN_MS / 1000,
            what="the chart plots 4 curves of 12 epochs",
            state=lambda: curve_lengths(page),
        )
        by_index = sorted(sweep["jobs"], key=lambda entry: entry["index"])
        histories = [client.get(e["job"]["links"]["history"]).json()["epochs"] for e in by_index]
        labels, columns = plotted(page)
        # epochs numbered as the API numbers them, from 0
        assert columns[0] == list(range(EPOCHS))
        assert columns[1:] == [[row["logs"]["val_loss"] for row in history] for history in histories]
        assert labels == [", ".join(f"{short(path)}={value}" for path, value in e["point"].items()) for e in by_index]
        # another log key, then a log scale
        page.locator("#sweep-metric").select_option("loss")
        assert plotted(page)[1][1:] == [[row["logs"]["loss"] for row in history] for history in histories]
        page.locator("#log-scale").check()
        assert page.evaluate("window.trainqChart.scales.y.distr") == 3
        page.locator("#sweep-metric").select_option("val_loss")
        # the hostile name is text: no element made of it, no dialog
        assert page.locator("main img").count() == 0 and dialogs == []
        screenshot(page, "sweep")

        phone = watch_errors(open_page(browser, f"{stack.api.base_url}/#/sweeps", dialogs, PHONE), errors)
        expect(phone.locator("table.sweeps .counts-words")).to_have_text("4 succeeded", timeout=SEEN_MS)
        screenshot(phone, "sweeps-phone")
        phone.goto(f"{stack.api.base_url}/#/sweeps/{created['id']}")
        expect(phone.locator("table.ranking tbody tr")).to_have_count(4, timeout=SEEN_MS)
        wait_for(
            lambda: curve_lengths(phone) == [EPOCHS] * 4,
            timeout=SEEN_MS / 1000,
            what="the phone's chart plots 4 curves",
            state=lambda: curve_lengths(phone),
        )
        screenshot(phone, "sweep-phone")

        # a job of the sweep links back to it
        ranking.first.locator("a.job-link").click()
        expect(page.locator(".job .badge")).to_have_text("succeeded", timeout=SEEN_MS)
        page.locator("a.sweep-link").click()
        expect(page.locator(".sweep h1")).to_have_text(HOSTILE_NAME, timeout=SEEN_MS)

        # a sweep of long jobs: one runs on the worker, the others wait; the button ends them all
        long = create_sweep(
            client, long_spec(epochs=100_000), {"compile.optimizer.learningRate": [1e-3, 2e-3, 3e-3]}, "long sweep"
        )
        page.goto(f"{stack.api.base_url}/#/sweeps/{long['id']}")
        expect(page.locator("table.ranking .badge").first).to_have_text("running", timeout=SEEN_MS)
        wait_for(
            lambda: max(curve_lengths(page), default=0) >= 1,
            timeout=SEEN_MS / 1000,
            what="the running job's curve has an epoch",
            state=lambda: curve_lengths(page),
        )
        page.get_by_role("button", name="Cancel sweep").click()
        expect(page.locator("table.ranking .badge")).to_have_text(["cancelled"] * 3, timeout=SEEN_MS)
        expect(page.get_by_role("button", name="Cancel sweep")).to_be_hidden()
        ended = client.get(long["links"]["self"]).json()
        assert ended["counts"] == {"cancelled": 3}, ended["counts"]
        assert all(entry["job"]["cancelRequested"] for entry in ended["jobs"])
        # every epoch the cancelled job kept is on its curve
        kept = sorted(entry["job"]["progress"]["epoch"] for entry in ended["jobs"])
        wait_for(
            lambda: sorted(curve_lengths(page)) == kept,
            timeout=SEEN_MS / 1000,
            what="the chart plots every epoch kept",
            state=lambda: (curve_lengths(page), kept),
        )
        screenshot(page, "sweep-cancelled")
    assert dialogs == [] and errors == []
