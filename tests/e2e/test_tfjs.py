"""The round trip a tf.js user makes, over real HTTP with the real tf.js 4.22 in node: build
and compile a model in tf.js, save it to trainq (`tf.io.http`), train it as a job on a
Celery worker, load the result back with `tf.loadLayersModel`, and compare with trainq's
/predict and with tf.js's own fit from the same saved model."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import history, submit, watch_until_finished, weights
from tests.parity.conftest import MODELS_PROGRAM, run_tfjs, tfjs  # noqa: F401 (tfjs: the fixture)
from tests.support.keys import HEADERS
from tests.support.processes import BIN, process_env

pytestmark = [pytest.mark.e2e, pytest.mark.parity]

RELATIVE = 1e-5  # the parity tests' tolerances: on losses and metrics
WEIGHT_SCALE = 1e-5  # of the largest |weight|, on weights and predictions
LAYERS = [{"units": 6, "inputShape": [3], "activation": "relu"}, {"units": 1}]
COMPILE = {"optimizer": {"name": "adam", "learningRate": 0.01}, "loss": "meanSquaredError", "metrics": ["mae"]}
FIT = {"epochs": 6, "batchSize": 8, "validationSplit": 0.25}


def steps(*steps: dict[str, Any]) -> list[dict[str, Any]]:
    # a step that talks to trainq sends the test session's key, as a tf.js page would its own
    for step in steps:
        for body in step.values():
            if "url" in body:
                body.setdefault("headers", HEADERS)
    results = run_tfjs({"steps": list(steps)}, MODELS_PROGRAM)["results"]
    for result in results:
        assert "error" not in result, result["error"]
    return results


def data(seed: int, rows: int) -> tuple[list[list[float]], list[list[float]]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3)).astype(np.float32)
    y = (x @ np.array([[1.0], [-2.0], [0.5]]) + 0.3).astype(np.float32)
    return x.tolist(), y.tolist()


def initial_weights() -> list[list[Any]]:
    rng = np.random.default_rng(5)
    shapes = [(3, 6), (6,), (6, 1), (1,)]
    return [rng.uniform(-0.5, 0.5, shape).astype(np.float32).tolist() for shape in shapes]


def as_arrays(tfjs_weights: list[dict[str, Any]]) -> list[np.ndarray]:
    return [np.asarray(w["values"], np.float64).reshape(w["shape"]) for w in tfjs_weights]


def test_a_model_saved_by_tfjs_trains_on_trainq_and_loads_back_into_tfjs(stack: Stack, tfjs: None) -> None:  # noqa: F811
    assert stack.api is not None
    base = stack.api.base_url
    x, y = data(1, 40)
    x_new, _ = data(2, 9)
    [saved] = steps(
        {
            "save": {
                "model": {"layers": LAYERS, "weights": initial_weights()},
                "compile": COMPILE,
                "url": f"{base}/v1/models?name=built-in-tfjs",
            }
        }
    )
    assert saved["status"] == 201 and "thrown" not in saved, saved
    model_id = saved["body"]["id"]

    with stack.client() as client:
        # compile left out: the model's trainingConfig says it
        job = submit(client, {"model": {"from": model_id}, "fit": {**FIT, "shuffle": False}, "data": {"x": x, "y": y}})
        stack.worker("tfjs")
        _, final = watch_until_finished(client, job["id"], timeout=120, processes=stack.processes)
        assert final["status"] == "succeeded", final
        trainq_history = history(client, job["id"])
        trainq_weights = weights(client, job["id"])
        predicted = client.post(f"/v1/jobs/{job['id']}/predict", json={"x": x_new})
        assert predicted.status_code == 200, predicted.text

    loaded, fitted = steps(
        {"load": {"url": f"{base}/v1/jobs/{job['id']}/model.json", "x": x_new}},
        {"fit": {"url": f"{base}/v1/models/{model_id}/model.json", "x": x, "y": y, **FIT}},
    )

    # tf.js loads trainq's result as trainq has it, and predicts what /predict answers
    for got, want in zip(as_arrays(loaded["weights"]), trainq_weights, strict=True):
        np.testing.assert_array_equal(got, want)
    expected = np.asarray(predicted.json()["predictions"], np.float64)
    tf_predictions = np.asarray(loaded["predict"], np.float64).reshape(expected.shape)
    assert np.max(np.abs(tf_predictions - expected)) <= WEIGHT_SCALE * np.max(np.abs(expected))
    assert loaded["optimizer"]["className"] == "Adam" and loaded["loss"] == "meanSquaredError"
    assert loaded["userDefinedMetadata"]["trainq"]["jobId"] == job["id"]

    # tf.js's own fit from the model it saved (compiled by its trainingConfig) is trainq's job
    for key in ("loss", "mae", "val_loss", "val_mae"):
        ours = np.asarray([epoch["logs"][key] for epoch in trainq_history], np.float64)
        theirs = np.asarray(fitted["history"][key], np.float64)
        assert ours.shape == theirs.shape == (FIT["epochs"],), key
        assert np.all(np.abs(ours - theirs) <= RELATIVE * np.maximum(np.abs(theirs), 1e-6)), (key, ours, theirs)
    tfjs_weights = as_arrays(fitted["weights"])
    scale = max(float(np.max(np.abs(w))) for w in tfjs_weights)
    for ours_w, theirs_w in zip(trainq_weights, tfjs_weights, strict=True):
        assert np.max(np.abs(ours_w - theirs_w)) <= WEIGHT_SCALE * scale


def test_tfjs_saving_a_conv2d_model_or_short_weights_is_422_and_stores_nothing(stack: Stack, tfjs: None) -> None:  # noqa: F811
    assert stack.api is not None
    conv = [
        {"type": "conv2d", "options": {"inputShape": [4, 4, 1], "filters": 2, "kernelSize": 3}},
        {"type": "flatten", "options": {}},
        {"units": 1},
    ]
    before = stack.row_counts()["models"]
    [refused] = steps({"save": {"model": {"layers": conv}, "url": f"{stack.api.base_url}/v1/models"}})
    # tf.io.http throws on the 422; trainq's answer names the layer
    assert "failed due to HTTP response status 422" in refused["thrown"]
    assert refused["status"] == 422
    assert refused["body"]["errors"][0]["field"] == "modelTopology.config.layers[0].class_name"
    assert "'Conv2D' layers are not supported" in refused["body"]["detail"]
    assert stack.row_counts()["models"] == before


def trainq(stack: Stack, *args: str) -> str:
    """`trainq ARGS --url <the stack's API>`: its stdout, once it exited 0."""
    assert stack.api is not None
    done = subprocess.run(
        [str(BIN / "trainq"), *args, "--url", stack.api.base_url],
        env=process_env({"COLUMNS": "200"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, f"rc {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


def test_trainq_models_import_takes_tfjs_files_and_trainq_export_writes_them(
    stack: Stack,
    tfjs: None,  # noqa: F811
    tmp_path: Path,
) -> None:
    [saved] = steps({"save": {"model": {"layers": LAYERS, "weights": initial_weights()}, "compile": COMPILE}})
    # the files tf.js writes for model.save('file://saved'): model.json naming its weights file beside it
    folder = tmp_path / "saved"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps(saved["modelJson"]))
    (folder / saved["modelJson"]["weightsManifest"][0]["paths"][0]).write_bytes(base64.b64decode(saved["weights"]))

    model_id = trainq(stack, "models", "import", str(folder / "model.json"), "--name", "from files").strip()
    assert model_id in trainq(stack, "models", "list")
    x, y = data(3, 16)
    with stack.client() as client:
        assert client.get(f"/v1/models/{model_id}").json()["name"] == "from files"
        job = submit(client, {"model": {"from": model_id}, "fit": {"epochs": 2}, "data": {"x": x, "y": y}})
        stack.worker("export")
        _, final = watch_until_finished(client, job["id"], timeout=120, processes=stack.processes)
        assert final["status"] == "succeeded", final
        served = client.get(f"/v1/jobs/{job['id']}/model.json").content
        served_weights = client.get(f"/v1/jobs/{job['id']}/weights.bin").content

    out = tmp_path / "exported"
    trainq(stack, "export", job["id"], "--out", str(out))
    assert (out / "model.json").read_bytes() == served
    assert (out / "weights.bin").read_bytes() == served_weights
    # and the exported files go back in as a model
    again = trainq(stack, "models", "import", str(out / "model.json")).strip()
    with stack.client() as client:
        assert client.get(f"/v1/models/{again}/weights.bin").content == served_weights
        assert client.delete(f"/v1/models/{again}").status_code == 204
