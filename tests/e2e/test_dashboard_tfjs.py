"""The job page's "Download for TensorFlow.js" in a real headless Chromium: the two files it
downloads, served beside a page that loads the real tf.js 4.22 (tf.min.js from the test
tree's node_modules, served locally: nothing from a CDN), are a model tf.loadLayersModel
loads and that predicts what trainq's /predict answers."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from playwright.sync_api import Browser, Download, expect

from tests.e2e.conftest import Stack
from tests.e2e.jobs import seed_spec, watch_until_finished
from tests.parity.conftest import PARITY, tfjs  # noqa: F401 (tfjs: the fixture)
from tests.support.processes import wait_for
from trainq.services.client import TrainqClient

pytestmark = [pytest.mark.e2e, pytest.mark.parity]

TFJS_BUNDLE = PARITY / "node_modules" / "@tensorflow" / "tfjs" / "dist" / "tf.min.js"
SEEN_MS = 15_000
WEIGHT_SCALE = 1e-5  # of the largest |output|: float32 rounding, as the parity tests allow
X_NEW = [[-0.75], [0.0], [0.3], [2.5]]
PAGE = """<!doctype html>
<meta charset="utf-8">
<title>tf.js loads trainq's download</title>
<script src="tf.min.js"></script>
<script>
  window.predicted = tf.loadLayersModel("model.json").then(
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

    tf_page = browser.new_page()
    requests: list[str] = []
    tf_page.on("request", lambda request: requests.append(request.url))
    tf_page.goto(f"{site}/index.html")
    result = tf_page.evaluate("window.predicted")
    tf_page.close()
    assert "error" not in result, result
    predicted = np.asarray(result["values"], np.float64)
    assert np.max(np.abs(predicted - expected)) <= WEIGHT_SCALE * np.max(np.abs(expected)), (predicted, expected)
    assert result["optimizer"] == "SGD"
    # everything the page loaded came from the local site
    assert requests and all(url.startswith(site) for url in requests), requests
