"""Datasets through the real service: uploaded over HTTP in each format, trained on by a real
worker from storage (memory-mapped), with the same history and weights as the same data
inline; a large evaluation runs on the worker; a dataset in use cannot be deleted."""

from __future__ import annotations

import io
import json
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import get_job, history, submit, wait_for_status, weights
from tests.support.processes import wait_for
from trainq.services.engine import fit
from trainq.services.spec import JobSpec

pytestmark = pytest.mark.e2e

RNG = np.random.default_rng(21)
X = RNG.uniform(-1, 1, size=(60, 3)).astype(np.float32)
Y = (X @ np.array([[1.5], [-2.0], [0.5]], dtype=np.float32) + 0.25).astype(np.float32)


def spec(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": {"layers": [{"units": 4, "inputShape": [3], "activation": "tanh"}, {"units": 1}]},
        "compile": {
            "optimizer": {"name": "adam", "learningRate": 0.05},
            "loss": "meanSquaredError",
            "metrics": ["mae"],
        },
        "fit": {"epochs": 4, "batchSize": 16, "validationSplit": 0.25, "seed": 3},
        "data": data,
    }


def uploads() -> dict[str, tuple[bytes, dict[str, str], str]]:
    """format -> (body, query, how it is sent)"""
    npy, npz, parquet = io.BytesIO(), io.BytesIO(), io.BytesIO()
    np.save(npy, np.hstack([X, Y]))
    np.savez(npz, x=X, y=Y)
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "t": Y[:, 0]}), parquet)
    # repr of a float32 in float64 is exact: the CSV holds the very same numbers
    rows = "\n".join(",".join(repr(float(v)) for v in row) for row in np.hstack([X, Y]))
    return {
        "csv": (f"a,b,c,t\n{rows}\n".encode(), {"yColumns": "t"}, "multipart"),
        "npy": (npy.getvalue(), {}, "raw"),
        "npz": (npz.getvalue(), {}, "multipart"),
        "json": (json.dumps({"x": X.tolist(), "y": Y.tolist()}).encode(), {}, "raw"),
        "parquet": (parquet.getvalue(), {}, "raw"),
    }


def upload(client: httpx.Client, fmt: str, body: bytes, params: dict[str, str], how: str) -> dict[str, Any]:
    if how == "multipart":
        response = client.post("/v1/datasets", params=params, files={"file": (f"data.{fmt}", body)})
    else:
        response = client.post("/v1/datasets", params={**params, "format": fmt}, content=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_each_format_trains_to_the_numbers_of_the_same_data_inline(stack: Stack) -> None:
    with stack.client() as client:
        inline = submit(client, spec({"x": X.tolist(), "y": Y.tolist()}))
        jobs = {}
        for fmt, (body, params, how) in uploads().items():
            dataset = upload(client, fmt, body, params, how)
            assert (dataset["xShape"], dataset["yShape"]) == ([60, 3], [60, 1]), (fmt, dataset)
            jobs[fmt] = (dataset["id"], submit(client, spec({"datasetId": dataset["id"]})))
        stack.worker("datasets")
        expected = wait_for_status(client, inline["id"], "succeeded", timeout=60, processes=stack.processes)
        expected_history = [row["logs"] for row in history(client, expected["id"])]
        expected_weights = weights(client, expected["id"])
        for fmt, (_, job) in jobs.items():
            done = wait_for_status(client, job["id"], ("succeeded", "failed"), timeout=60, processes=stack.processes)
            assert done["status"] == "succeeded", (fmt, done)
            assert [row["logs"] for row in history(client, job["id"])] == expected_history, fmt
            for got, want in zip(weights(client, job["id"]), expected_weights):
                np.testing.assert_array_equal(got, want, err_msg=fmt)

        # evaluation of the trained model on a dataset, on the worker and in the API: the engine's numbers
        dataset_id, job = jobs["npy"]
        inline_answer = client.post(f"/v1/jobs/{job['id']}/evaluate", json={"x": X.tolist(), "y": Y.tolist()}).json()
        by_id = client.post(f"/v1/jobs/{job['id']}/evaluate", json={"datasetId": dataset_id})
        assert by_id.status_code == 200 and by_id.json() == inline_answer, by_id.text
        queued = client.post(f"/v1/jobs/{job['id']}/evaluations", json={"datasetId": dataset_id})
        assert queued.status_code == 202, queued.text
        evaluation_id = queued.json()["id"]

        def finished() -> dict[str, Any] | None:
            answer = client.get(f"/v1/evaluations/{evaluation_id}").json()
            return answer if answer["status"] in ("succeeded", "failed") else None

        evaluation = wait_for(finished, timeout=30, what="the evaluation finishes", processes=stack.processes)
        assert evaluation["status"] == "succeeded", evaluation
        assert (evaluation["loss"], evaluation["metrics"]) == (inline_answer["loss"], inline_answer["metrics"])
        assert client.get(f"/v1/jobs/{job['id']}/evaluations/{evaluation_id}").json() == evaluation


def test_a_dataset_in_use_is_kept_and_an_unused_one_deleted_with_its_bytes(stack: Stack) -> None:
    with stack.client() as client:
        npz = io.BytesIO()
        np.savez(npz, x=X[:50], y=Y[:50])  # not the first test's upload: a dataset of its own
        dataset = upload(client, "npz", npz.getvalue(), {}, "raw")
        job = submit(client, spec({"datasetId": dataset["id"]}))
        refused = client.delete(f"/v1/datasets/{dataset['id']}")
        assert refused.status_code == 409, refused.text
        stack.worker("delete")
        wait_for_status(client, job["id"], "succeeded", timeout=60, processes=stack.processes)
        folder = stack.folder / "home" / "datasets" / "datasets" / dataset["id"]
        assert folder.is_dir()
        assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
        assert not folder.exists()
        assert get_job(client, job["id"])["status"] == "succeeded"


def test_a_validation_dataset_gives_the_val_loss_of_the_engines_own_fit(stack: Stack) -> None:
    train_x, train_y, val_x, val_y = X[:45], Y[:45], X[45:], Y[45:]
    with stack.client() as client:
        ids = []
        for x, y in ((train_x, train_y), (val_x, val_y)):
            npz = io.BytesIO()
            np.savez(npz, x=x, y=y)
            ids.append(upload(client, "npz", npz.getvalue(), {}, "raw")["id"])
        document = spec({"datasetId": ids[0], "validationDatasetId": ids[1]})
        del document["fit"]["validationSplit"]
        job = submit(client, document)
        stack.worker("validation")
        done = wait_for_status(client, job["id"], ("succeeded", "failed"), timeout=60, processes=stack.processes)
        assert done["status"] == "succeeded", done
        rows = [row["logs"] for row in history(client, job["id"])]
        trained = weights(client, job["id"])

    config = JobSpec.model_validate({**document, "data": {"x": train_x.tolist(), "y": train_y.tolist()}})
    expected = fit(config.to_training_config(), train_x, train_y, validation_data=(val_x, val_y))
    assert [row["val_loss"] for row in rows] == expected.history["val_loss"]
    assert [row["val_mae"] for row in rows] == expected.history["val_mae"]
    assert [row["loss"] for row in rows] == expected.history["loss"]
    for got, want in zip(trained, expected.weights, strict=True):
        np.testing.assert_array_equal(got, want)
