"""The job page's "Download for TensorFlow.js" in a real headless Chromium: the two files it
downloads, served beside a page that loads the real tf.js 4.22 (tf.min.js from the test
tree's node_modules, served locally: nothing from a CDN), are a model tf.loadLayersModel
loads and that predicts what trainq's /predict answers; and the same page, on an origin
TRAINQ_CORS_ORIGINS allows, loads the model straight from trainq with its API key."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import pytest
from playwright.sync_api import Browser, Download, expect

from tests.e2e.conftest import Stack
from tests.e2e.jobs import seed_spec, watch_until_finished
from tests.parity.conftest import PARITY, tfjs  # noqa: F401 (tfjs: the fixture)
from tests.support.keys import TEST_KEY, with_key
from tests.support.processes import wait_for
from trainq.services.client import TrainqClient

pytestmark = [pytest.mark.e2e, pytest.mark.parity]

TFJS_BUNDLE = PARITY / "node_modules" / "@tensorflow" / "tfjs" / "dist" / "tf.min.js"
SEEN_MS = 15_000
WEIGHT_SCALE = 1e-5  # of the largest |output|: float32 rounding, as the parity tests allow
X_NEW = [[-0.75], [0.0], [0.3], [2.5]]
PAGE = """<!doctype html>
<meta charset="utf-8">
<title>tf.js loads trainq's model</title>
<script src="tf.min.js"></script>
<script>
  const url = new URLSearchParams(location.search).get("model") ?? "model.json";
  const key = new URLSearchParams(location.search).get("key");
  const options = key ? { requestInit: { headers: { Authorization: `Bearer ${key}` } } } : {};
  window.predicted = tf.loadLayersModel(url, options).then(
    (model) => ({
      values: Array.from(model.predict(tf.tensor2d(%s)).dataSync()),
      optimizer: model.optimizer.getClassName(),
    }),
    (error) => ({ error: String(error) }),
  );
</script>
"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def static_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A folder served over HTTP on its own port (another origin than trainq's): (its URL, the folder)."""
    folder = tmp_path / "site"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", folder
    finally:
        server.shutdown()
        thread.join()


def test_the_job_page_downloads_a_model_that_tfjs_loads_in_a_page(
    stack: Stack,
    browser: Browser,
    static_site: tuple[str, Path],
    tfjs: None,  # noqa: F811
) -> None:
    assert stack.api is not None
    site, folder = static_site
    with TrainqClient(stack.api.base_url) as client:
        job = client.submit(seed_spec(epochs=20))
        stack.worker("dashboard-tfjs")
        with stack.client() as http:
            _, final = watch_until_finished(http, job.id, timeout=120, processes=stack.processes)
        assert final["status"] == "succeeded", final
        expected = np.asarray(client.predict(job.id, X_NEW), np.float64).ravel()

    page = browser.new_page(accept_downloads=True)
    downloads: list[Download] = []
    page.on("download", lambda download: downloads.append(download))
    page.goto(with_key(stack.api.base_url))
    page.goto(f"{stack.api.base_url}/#/jobs/{job.id}")
    card = page.locator("section.tfjs")
    expect(card).to_be_visible(timeout=SEEN_MS)
    # the lines that load it straight from trainq
    expect(card.locator("pre")).to_contain_text(
        f"tf.loadLayersModel('{stack.api.base_url}/v1/jobs/{job.id}/model.json'"
    )
    card.get_by_role("button", name="Download for TensorFlow.js").click()
    expect(card).to_contain_text("model.json and weights.bin saved (epoch 20, final)", timeout=SEEN_MS)

    def both_downloaded() -> bool:
        page.wait_for_timeout(50)  # Playwright's sync API hands over its events while it waits
        return len(downloads) == 2

    wait_for(both_downloaded, timeout=SEEN_MS / 1000, what="two downloads", state=lambda: downloads)
    assert sorted(d.suggested_filename for d in downloads) == ["model.json", "weights.bin"]
    for download in downloads:
        download.save_as(folder / download.suggested_filename)
    page.close()

    model_json = json.loads((folder / "model.json").read_text())
    assert model_json["weightsManifest"][0]["paths"] == ["weights.bin"]
    shutil.copyfile(TFJS_BUNDLE, folder / "tf.min.js")
    (folder / "index.html").write_text(PAGE % json.dumps(X_NEW))

    downloaded = predict_in_page(browser, f"{site}/index.html", site)
    assert_predicts(downloaded, expected)

    # the page's origin allowed, tf.js loads the model from trainq itself, the key in a header
    cors_api = stack.processes.api({**stack.env, "TRAINQ_CORS_ORIGINS": site}, name="api-cors")
    model_url = f"{cors_api.base_url}/v1/jobs/{job.id}/model.json"
    direct = predict_in_page(browser, f"{site}/index.html?{urlencode({'model': model_url, 'key': TEST_KEY})}")
    assert_predicts(direct, expected)
    # an API that does not allow the page's origin: the browser keeps trainq's answer from it
    not_allowed = f"{stack.api.base_url}/v1/jobs/{job.id}/model.json"
    refused = predict_in_page(browser, f"{site}/index.html?{urlencode({'model': not_allowed, 'key': TEST_KEY})}")
    assert "error" in refused and "Failed to fetch" in refused["error"], refused


def predict_in_page(browser: Browser, url: str, local_only: str | None = None) -> Any:
    """What the tf.js page at `url` predicts; with `local_only`, checks that it loaded
    nothing from anywhere else."""
    page = browser.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    result = page.evaluate("window.predicted")
    page.close()
    if local_only is not None:
        assert requests and all(r.startswith(local_only) for r in requests), requests
    return result


def assert_predicts(result: Any, expected: np.ndarray) -> None:
    assert "error" not in result, result
    predicted = np.asarray(result["values"], np.float64)
    assert np.max(np.abs(predicted - expected)) <= WEIGHT_SCALE * np.max(np.abs(expected)), (predicted, expected)
    assert result["optimizer"] == "SGD"
