"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against the
real stack: jobs appear and finish without a reload, a job's curve has one point per epoch,
the form answers from the trained model, the cancel button stops a running job, and user
text stays text. Each page is saved under test-artifacts/ as a screenshot.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Dialog, Locator, Page, ViewportSize, expect

from tests.e2e.conftest import Stack
from tests.e2e.jobs import line, long_spec, seed_spec
from tests.support.keys import TEST_KEY, with_key
from tests.support.processes import REPO, wait_for
from trainq.services.client import TrainqClient

pytestmark = pytest.mark.e2e

ARTIFACTS = REPO / "test-artifacts"
DESKTOP: ViewportSize = {"width": 1280, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}
# the page polls every second: a change shows within two polls, and a job within its run
SEEN_MS = 15_000
XSS_NAME = "<script>alert(1)</script>"
HEARTBEAT = {"TRAINQ_HEARTBEAT_SECONDS": "0.2"}


def open_page(browser: Browser, url: str, dialogs: list[str], viewport: ViewportSize = DESKTOP) -> Page:
    page = browser.new_page(viewport=viewport)

    def dismiss(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    # logged in as a user of `trainq up` is: the key in the URL's fragment, kept by the tab
    base, _, route = url.partition("#")
    page.goto(with_key(base))
    if route:
        page.goto(url)
    return page


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    # from the top: scrolled, the sticky header would be drawn across the middle of the page
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def chart_points(page: Page) -> int:
    """How many epochs the page's chart plots (0 before it has one)."""
    return page.evaluate("window.trainqChart ? window.trainqChart.data[0].length : 0")


def wait_for_points(page: Page, condition: Callable[[int], bool], what: str) -> None:
    # polled from here: Playwright's own in-page polling evaluates a string, which the
    # dashboard's Content-Security-Policy (no eval) rightly refuses
    wait_for(lambda: condition(chart_points(page)), timeout=SEEN_MS / 1000, what=what, state=lambda: chart_points(page))


def job_row(page: Page, job_id: str) -> Locator:
    return page.locator(f'table.jobs tr[data-job-id="{job_id}"]')


def test_jobs_appear_and_succeed_live_and_a_job_page_plots_and_answers(
    stack: Stack, browser: Browser, dialogs: list[str]
) -> None:
    assert stack.api is not None
    page = open_page(browser, stack.api.base_url + "/", dialogs)
    expect(page.get_by_text("No jobs yet.")).to_be_visible(timeout=SEEN_MS)
    # a reload would clear this: it must still be there once the jobs have finished
    page.evaluate("window.notReloaded = true")

    spec = seed_spec(epochs=30)
    with TrainqClient(stack.api.base_url) as client:
        job = client.submit(spec)
        hostile = client.submit({**seed_spec(epochs=5), "name": XSS_NAME})
        row = job_row(page, job.id)
        expect(row).to_be_visible(timeout=SEEN_MS)
        expect(row.locator(".badge")).to_have_text("queued")
        expect(row.locator(".job-name")).to_have_text("y = 2x + 1")

        stack.worker("dashboard")
        expect(row.locator(".badge")).to_have_text("succeeded", timeout=SEEN_MS)
        expect(row.locator(".bar-label")).to_have_text("30 / 30")
        expect(job_row(page, hostile.id).locator(".badge")).to_have_text("succeeded", timeout=SEEN_MS)
        assert page.evaluate("window.notReloaded") is True

        # the hostile name is text: shown as typed, no script element made of it, no dialog
        expect(page.get_by_text(XSS_NAME, exact=True)).to_be_visible()
        assert page.locator("main script").count() == 0
        assert dialogs == []
        screenshot(page, "jobs")

        row.locator(".job-name").click()
        expect(page.locator(".job h1")).to_have_text("y = 2x + 1", timeout=SEEN_MS)
        expect(page.locator(".job .badge")).to_have_text("succeeded")
        history = client.history(job.id)
        wait_for_points(page, lambda n: n == 30, "the chart plots 30 epochs")
        plotted = page.evaluate("window.trainqChart.data.map((column) => Array.from(column))")
        series = page.evaluate("window.trainqChart.series.slice(1).map((s) => s.label)")
        assert series == ["loss", "val_loss"]
        # epochs numbered as the API numbers them, from 0
        assert plotted[0] == [row.epoch for row in history] == list(range(30))
        assert plotted[1] == [row.logs["loss"] for row in history]
        assert plotted[2] == [row.logs["val_loss"] for row in history]
        # its spec, as submitted (the data summarised)
        expect(page.locator("pre.spec:not(.tfjs-code)")).to_contain_text('"epochs": 30')
        expect(page.get_by_text("Training data: x: 200 rows × 1, y: 200 rows × 1")).to_be_visible()
        # the final weights, as a table per array
        expect(page.locator(".weight figcaption")).to_have_text(["Layer 1 kernel 1 × 1", "Layer 1 bias 1"])

        x, y = line(4, seed=99)
        page.locator("textarea[name=x]").fill(str(x))
        page.locator("textarea[name=y]").fill(str(y))
        page.get_by_role("button", name="Evaluate").click()
        answer = page.locator(".answer table.result")
        expect(answer.locator("caption")).to_have_text("Evaluation", timeout=SEEN_MS)
        expected = client.evaluate(job.id, x, y)
        shown = dict(zip(answer.locator("th").all_inner_texts(), answer.locator("td").all_inner_texts()))
        assert set(shown) == {"loss", "mae"}
        expected_mae = expected.metrics["mae"]
        assert expected.loss is not None and expected_mae is not None
        assert math.isclose(float(shown["loss"]), expected.loss, rel_tol=1e-5, abs_tol=1e-12)
        assert math.isclose(float(shown["mae"]), expected_mae, rel_tol=1e-5, abs_tol=1e-12)

        page.get_by_role("button", name="Predict").click()
        expect(answer.locator("caption")).to_have_text("Predictions (4)", timeout=SEEN_MS)
        predicted = [float(text) for text in answer.locator("td").all_inner_texts()]
        for got, want in zip(predicted, client.predict(job.id, x), strict=True):
            assert want[0] is not None and math.isclose(got, want[0], rel_tol=1e-5)

        # a field the API refuses is named in the answer
        page.locator("textarea[name=x]").fill("[[1, 2]]")
        page.get_by_role("button", name="Predict").click()
        expect(page.locator(".answer .banner.error")).to_contain_text("inputShape", timeout=SEEN_MS)
        page.locator("textarea[name=x]").fill(str(x))
        page.get_by_role("button", name="Evaluate").click()
        expect(answer.locator("caption")).to_have_text("Evaluation", timeout=SEEN_MS)
        screenshot(page, "job")

        phone = open_page(browser, stack.api.base_url + "/", dialogs, PHONE)
        expect(job_row(phone, job.id).locator(".badge")).to_have_text("succeeded", timeout=SEEN_MS)
        screenshot(phone, "jobs-phone")
        phone.goto(f"{stack.api.base_url}/#/jobs/{job.id}")
        wait_for_points(phone, lambda n: n == 30, "the chart plots 30 epochs")
        screenshot(phone, "job-phone")
        assert dialogs == []


def test_a_page_without_a_key_asks_for_one_and_a_refused_key_asks_again(
    stack: Stack, browser: Browser, dialogs: list[str]
) -> None:
    assert stack.api is not None
    page = browser.new_page(viewport=DESKTOP)
    page.goto(f"{stack.api.base_url}/#/workers")
    expect(page.get_by_text("An API key is needed.")).to_be_visible(timeout=SEEN_MS)
    screenshot(page, "key")
    page.get_by_label("API key").fill("tq_000000000000_not-a-key")
    page.get_by_role("button", name="Use this key").click()
    expect(page.get_by_text("The API refused the key this page had")).to_be_visible(timeout=SEEN_MS)
    page.get_by_label("API key").fill(TEST_KEY)
    page.get_by_role("button", name="Use this key").click()
    expect(page.locator("table.workers, .empty:not(.key)").first).to_be_visible(timeout=SEEN_MS)
    expect(page.get_by_text("An API key is needed.")).to_be_hidden()
    # kept for the tab, in session storage; never in a cookie
    assert page.evaluate("sessionStorage.getItem('trainq.apiKey')") == TEST_KEY
    assert page.context.cookies() == []
    # the key in the URL's fragment is taken out of the address bar
    page.goto(with_key(stack.api.base_url))
    expect(page.get_by_text("An API key is needed.")).to_be_hidden()
    assert "key=" not in page.url
    page.close()


def test_the_cancel_button_stops_a_running_job_and_the_workers_page_shows_it(
    stack: Stack, browser: Browser, dialogs: list[str]
) -> None:
    assert stack.api is not None
    worker = stack.worker("cancel", HEARTBEAT)
    with TrainqClient(stack.api.base_url) as client:
        job = client.submit(long_spec(epochs=100_000))
        page = open_page(browser, stack.api.base_url + "/#/workers", dialogs)
        running = page.locator(f'table.workers tr[data-worker^="{worker.name}@"]')
        expect(running).to_be_visible(timeout=SEEN_MS)
        expect(running.get_by_role("link", name="long")).to_be_visible()
        screenshot(page, "workers")

        page.goto(f"{stack.api.base_url}/#/jobs/{job.id}")
        expect(page.locator(".job .badge")).to_have_text("running", timeout=SEEN_MS)
        wait_for_points(page, lambda n: n >= 2, "the chart plots 2 epochs")
        page.get_by_role("button", name="Cancel job").click()
        expect(page.locator(".job .badge")).to_have_text("cancelled", timeout=SEEN_MS)
        expect(page.get_by_role("button", name="Cancel job")).to_be_hidden()
        finished = client.job(job.id)
        assert finished.status == "cancelled" and finished.cancel_requested, finished
        # every epoch it kept is on the curve
        wait_for_points(page, lambda n: n == finished.progress.epoch, "the chart plots every epoch kept")
        screenshot(page, "job-cancelled")
    assert dialogs == []


def test_a_job_page_grows_its_curve_from_the_jobs_event_stream(
    stack: Stack, browser: Browser, dialogs: list[str]
) -> None:
    assert stack.api is not None
    with TrainqClient(stack.api.base_url) as client:
        job = client.submit(long_spec(epochs=300, samples=1000))
        requested: list[str] = []
        page = browser.new_page(viewport=DESKTOP)
        page.on("request", lambda request: requested.append(request.url))
        page.goto(with_key(stack.api.base_url))
        page.goto(f"{stack.api.base_url}/#/jobs/{job.id}")
        # the worker starts only once the page watches the queued job, and reports often: on a
        # fast machine the job runs under a second, less than a page takes to load
        expect(page.locator(".job .badge")).to_have_text("queued", timeout=SEEN_MS)
        stack.worker("stream", {"TRAINQ_REPORT_INTERVAL_SECONDS": "0.05"})

        wait_for_points(page, lambda n: 0 < n < 300, "the chart plots the first epochs while the job runs")
        early = chart_points(page)
        wait_for_points(page, lambda n: n > early, "the curve grows")
        expect(page.locator(".job .badge")).to_have_text("succeeded", timeout=60_000)
        wait_for_points(page, lambda n: n == 300, "the chart plots all 300 epochs")
        plotted = page.evaluate("Array.from(window.trainqChart.data[1])")
        assert plotted == [row.logs["loss"] for row in client.history(job.id)]
        expect(page.locator(".job .bar-label")).to_have_text("300 / 300")

    # the epochs and states came from the stream, not from polling the job and its history
    job_path = f"/v1/jobs/{job.id}"
    assert any(url.endswith(f"{job_path}/events") for url in requested), requested
    assert not [url for url in requested if f"{job_path}/history" in url or url.endswith(job_path)], requested
    assert dialogs == []
