"""/v1/datasets over the API on a real SQLite database and a real storage folder: every
format, multipart and raw, dedupe, every validation answer, delete, jobs on datasets."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.api.conftest import asgi_client
from trainq.services.settings import Settings

pytestmark = pytest.mark.anyio

X = np.array([[0.5, 1.0], [1.5, -2.0], [2.5, 3.25], [-1.0, 0.0]], dtype=np.float32)
Y = np.array([[1.0], [0.0], [1.0], [0.5]], dtype=np.float32)


def as_csv() -> bytes:
    lines = ["a,b,target"] + [f"{a},{b},{t}" for (a, b), (t,) in zip(X.tolist(), Y.tolist())]
    return ("\n".join(lines) + "\n").encode()


def as_npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.hstack([X, Y]).astype(np.float64))
    return buffer.getvalue()


def as_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, x=X, y=Y[:, 0])
    return buffer.getvalue()


def as_json() -> bytes:
    return json.dumps({"x": X.tolist(), "y": Y.tolist()}).encode()


def as_parquet() -> bytes:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1], "target": Y[:, 0].astype(np.float64)}), buffer)
    return buffer.getvalue()


FILES = {"csv": as_csv, "npy": as_npy, "npz": as_npz, "json": as_json, "parquet": as_parquet}


async def upload(
    client: httpx.AsyncClient,
    body: bytes,
    *,
    content_type: str | None = None,
    multipart_name: str | None = None,
    **params: str,
) -> httpx.Response:
    if multipart_name is not None:
        return await client.post("/v1/datasets", params=params, files={"file": (multipart_name, body)})
    headers = {"content-type": content_type} if content_type else {}
    return await client.post("/v1/datasets", params=params, content=body, headers=headers)


def stored(settings: Settings, key: str) -> np.ndarray:
    return np.load(settings.home.resolve() / "datasets" / key)


@pytest.mark.parametrize("fmt", sorted(FILES))
@pytest.mark.parametrize("multipart", [False, True], ids=["raw", "multipart"])
async def test_each_format_uploads_to_float32_x_and_y_with_shapes_and_summary(
    client: httpx.AsyncClient, settings: Settings, fmt: str, multipart: bool
) -> None:
    body = FILES[fmt]()
    response = await upload(client, body, multipart_name=f"data.{fmt}" if multipart else None)
    assert response.status_code == 201, response.text
    dataset = response.json()
    assert (dataset["rows"], dataset["xShape"], dataset["yShape"]) == (4, [4, 2], [4, 1])
    assert dataset["format"] == fmt and dataset["dtype"] == "float32" and dataset["byteSize"] == len(body)
    import hashlib

    assert dataset["sha256"] == hashlib.sha256(body).hexdigest()
    x = stored(settings, f"datasets/{dataset['id']}/x.npy")
    y = stored(settings, f"datasets/{dataset['id']}/y.npy")
    assert x.dtype == np.float32 and y.dtype == np.float32
    np.testing.assert_array_equal(x, X)
    np.testing.assert_array_equal(y, Y)
    first = dataset["columns"][0]
    assert first["role"] == "x" and first["min"] == -1.0 and first["max"] == 2.5
    assert first["mean"] == pytest.approx(X[:, 0].mean()) and first["std"] == pytest.approx(X[:, 0].std())
    assert [c["role"] for c in dataset["columns"]] == ["x", "x", "y"]
    assert (await client.get(f"/v1/datasets/{dataset['id']}")).json() == dataset


async def test_the_same_content_twice_is_the_same_dataset_raw_or_multipart(client: httpx.AsyncClient) -> None:
    first = await upload(client, as_csv(), content_type="text/csv")
    again = await upload(client, as_csv(), multipart_name="again.csv")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    # read another way (other target column), it is another dataset
    other = await upload(client, as_csv(), content_type="text/csv", yColumns="b", xColumns="a,target")
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]
    listed = (await client.get("/v1/datasets")).json()
    assert [d["id"] for d in listed["items"]] == [other.json()["id"], first.json()["id"]]


async def error_of(response: httpx.Response, status: int = 422) -> tuple[str, str]:
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    return error["field"], error["message"]


async def test_a_non_numeric_cell_is_named_by_row_and_column(client: httpx.AsyncClient) -> None:
    response = await upload(client, b"a,b,t\n1,2,3\n4,five,6\n", content_type="text/csv")
    assert await error_of(response) == ("file", "row 1 (line 3), column 'b': 'five' is not a number")


@pytest.mark.parametrize(
    "header",
    [b"a" * (2 * 1024 * 1024), b'"' + b"a" * 200_000 + b'",b,t\n1,2,3\n'],
    ids=["no-newline-in-2MiB", "one-name-past-csvs-field-limit"],
)
async def test_a_csv_header_too_long_to_be_one_is_422_naming_the_header(
    client: httpx.AsyncClient, header: bytes
) -> None:
    field, message = await error_of(await upload(client, header, content_type="text/csv"))
    assert field == "file" and message.startswith("line 1, the header row"), message


async def test_a_byte_order_mark_is_not_part_of_the_first_column_name(client: httpx.AsyncClient) -> None:
    response = await upload(client, b"\xef\xbb\xbf" + as_csv(), content_type="text/csv", xColumns="a,b")
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("shape", [(1, 10**7), (10**18, 2)])
async def test_an_npy_header_that_declares_more_than_the_file_holds_is_refused_at_once(
    client: httpx.AsyncClient, shape: tuple[int, ...]
) -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    response = await upload(client, header.getvalue() + b"\0" * 16, content_type="application/x-npy")
    field, message = await error_of(response)
    assert field == "file" and f"declares shape {list(shape)}" in message and "holds 16 bytes" in message


async def test_an_npz_member_damaged_in_the_archive_is_refused_naming_it(client: httpx.AsyncClient) -> None:
    body = bytearray(as_npz())
    middle = body.index(b"PK\x03\x04", 4) // 2  # inside the first member's compressed bytes
    body[middle : middle + 8] = b"\xff" * 8
    field, message = await error_of(await upload(client, bytes(body), content_type="application/x-npz"))
    assert field == "file" and "damaged" in message


async def test_a_parquet_file_with_a_damaged_page_is_refused(client: httpx.AsyncClient) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"a": np.arange(5000.0), "target": np.arange(5000.0)}), buffer, compression="snappy")
    body = bytearray(buffer.getvalue())
    body[100:4100] = b"\0" * 4000  # data pages; the footer at the end still reads
    field, message = await error_of(await upload(client, bytes(body), content_type="application/vnd.apache.parquet"))
    assert field == "file" and "Parquet" in message


async def test_a_multipart_upload_cut_short_before_its_closing_boundary_is_refused(client: httpx.AsyncClient) -> None:
    body = (
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="d.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n" + as_csv()
    )
    complete = body + b"\r\n--XyZ--\r\n"
    content_type = "multipart/form-data; boundary=XyZ"
    field, message = await error_of(await upload(client, body, content_type=content_type, xColumns="a,b"))
    assert field == "body" and "cut short" in message
    assert (await upload(client, complete, content_type=content_type, xColumns="a,b")).json()["rows"] == len(X)


async def test_json_rows_that_are_not_rows_of_numbers_name_the_array(client: httpx.AsyncClient) -> None:
    body = json.dumps({"x": [[[1.0]]], "y": [[1.0]]}).encode()
    assert (await error_of(await upload(client, body, content_type="application/json")))[0] == "file.x"


async def test_a_ragged_row_is_named(client: httpx.AsyncClient) -> None:
    response = await upload(client, b"a,b,t\n1,2,3\n4,5\n", content_type="text/csv")
    assert await error_of(response) == ("file", "row 1 (line 3): ragged row of 2 values; the header has 3 columns")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e39"])
async def test_nan_and_infinite_values_are_named_by_row_and_column(client: httpx.AsyncClient, value: str) -> None:
    response = await upload(client, f"a,b,t\n1,2,3\n4,5,{value}\n".encode(), content_type="text/csv")
    field, message = await error_of(response)
    assert field == "file" and message.startswith("row 1 (line 3), column 't': ")
    assert message.endswith("is not a finite float32 number")


async def test_nan_in_an_npz_array_is_named_by_array_and_row(client: httpx.AsyncClient) -> None:
    x = X.copy()
    x[2, 1] = np.nan
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=Y)
    response = await upload(client, buffer.getvalue())
    assert await error_of(response) == ("file", "x[2], column 'x[1]': nan is not a finite float32 number")


async def test_x_and_y_of_different_row_counts_are_refused(client: httpx.AsyncClient) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, x=X, y=Y[:3])
    assert await error_of(await upload(client, buffer.getvalue())) == ("file", "x has 4 rows but y has 3")
    body = json.dumps({"x": X.tolist(), "y": Y[:2].tolist()}).encode()
    assert await error_of(await upload(client, body, content_type="application/json")) == (
        "file",
        "x has 4 rows but y has 2",
    )


async def test_an_empty_file_is_refused(client: httpx.AsyncClient) -> None:
    assert await error_of(await upload(client, b"", content_type="text/csv")) == ("file", "is empty")
    assert await error_of(await upload(client, b"a,b\n", content_type="text/csv")) == ("file", "holds no rows")


async def test_a_file_over_the_size_limit_is_413(settings: Settings) -> None:
    from trainq.api.app import create_app

    small = settings.model_copy(update={"max_dataset_bytes": 100})
    async with asgi_client(create_app(small)) as client:
        body = b"a,b\n" + b"1,2\n" * 100
        declared = await upload(client, body, content_type="text/csv")
        assert await error_of(declared, 413) == ("body", "is larger than the dataset limit of 100 bytes")

        async def chunked() -> Any:
            for _ in range(100):
                yield b"1,2\n"

        streamed = await client.post("/v1/datasets", content=chunked(), headers={"content-type": "text/csv"})
        assert await error_of(streamed, 413) == ("file", "is larger than the dataset limit of 100 bytes")
    assert not list((settings.home / "uploads").iterdir()), "the staging files are removed"


async def test_a_column_that_does_not_exist_is_named(client: httpx.AsyncClient) -> None:
    response = await upload(client, as_csv(), content_type="text/csv", yColumns="label")
    assert await error_of(response) == ("query.yColumns", "no column 'label'; the file's columns are a, b, target")
    response = await upload(client, as_csv(), content_type="text/csv", xColumns="a,c", yColumns="target")
    assert await error_of(response) == ("query.xColumns", "no column 'c'; the file's columns are a, b, target")


async def test_an_unknown_dataset_is_404_naming_the_path(client: httpx.AsyncClient) -> None:
    assert await error_of(await client.get("/v1/datasets/nope"), 404) == ("path.dataset_id", "dataset nope not found")


def job_on(dataset_id: str, **fit: Any) -> dict[str, Any]:
    return {
        "model": {"layers": [{"units": 1, "inputShape": [2], "activation": "sigmoid"}]},
        "compile": {"optimizer": "sgd", "loss": "binaryCrossentropy"},
        "fit": {"epochs": 2, "batchSize": 2, "seed": 1, **fit},
        "data": {"datasetId": dataset_id},
    }


async def test_a_job_whose_dataset_does_not_fit_its_model_is_refused_at_submit(client: httpx.AsyncClient) -> None:
    dataset = (await upload(client, as_csv(), content_type="text/csv")).json()
    spec = job_on(dataset["id"])
    spec["model"]["layers"][0]["inputShape"] = [3]
    assert await error_of(await client.post("/v1/jobs", json=spec)) == (
        "data.datasetId",
        "rows have 2 values but the first layer's inputShape is [3]",
    )
    spec = job_on(dataset["id"])
    spec["model"]["layers"][0]["units"] = 2
    field, message = await error_of(await client.post("/v1/jobs", json=spec))
    assert field == "data.datasetId" or field == "data.y", (field, message)
    assert await error_of(await client.post("/v1/jobs", json=job_on("missing"))) == (
        "data.datasetId",
        "no dataset missing; upload one with POST /v1/datasets",
    )
    both = {**job_on(dataset["id"]), "data": {"datasetId": dataset["id"], "x": [[1, 2]], "y": [[1]]}}
    assert (await client.post("/v1/jobs", json=both)).status_code == 422


async def test_data_that_is_neither_inline_nor_a_dataset_names_the_field_at_fault(client: httpx.AsyncClient) -> None:
    async def errors(data: dict[str, Any]) -> list[tuple[str, str]]:
        response = await client.post("/v1/jobs", json={**job_on("unused"), "data": data})
        assert response.status_code == 422, response.text
        return [(error["field"], error["message"]) for error in response.json()["errors"]]

    required = "Field required: inline samples, or datasetId naming an uploaded dataset instead of x and y"
    assert await errors({}) == [("data.x", required), ("data.y", required)]
    assert await errors({"x": [[1, 2]]}) == [("data.y", required)]
    assert await errors({"y": [[1]]}) == [("data.x", required)]
    assert await errors({"x": [[1, 2]], "y": [[1]], "validationDatasetId": "v"}) == [
        ("data.validationDatasetId", "goes with datasetId; with inline x and y use validationData")
    ]
    assert await errors({"datasetId": "d", "y": [[1]], "validationData": {"x": [[1, 2]], "y": [[1]]}}) == [
        (
            "data.datasetId",
            "give either datasetId or inline x and y (and validationData), not both; y and validationData given too",
        )
    ]


async def test_inline_data_over_the_limit_is_413_with_a_hint_to_upload(client: httpx.AsyncClient) -> None:
    spec = job_on("x")
    spec["data"] = {"x": [[0.5, 0.25]] * 5000, "y": [[1]] * 5000}
    response = await client.post("/v1/jobs", json=spec)
    assert response.status_code == 413, response.text
    assert "POST /v1/datasets" in response.json()["detail"] and "data.datasetId" in response.json()["detail"]


async def test_deleting_a_dataset_in_use_is_409_and_an_unused_one_loses_its_bytes(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    dataset = (await upload(client, as_csv(), content_type="text/csv")).json()
    job = await client.post("/v1/jobs", json=job_on(dataset["id"]))
    assert job.status_code == 201, job.text
    field, message = await error_of(await client.delete(f"/v1/datasets/{dataset['id']}"), 409)
    assert field == "path.dataset_id" and job.json()["id"] in message
    folder = settings.home.resolve() / "datasets" / "datasets" / dataset["id"]
    assert sorted(p.name for p in folder.iterdir()) == ["x.npy", "y.npy"]

    assert (await client.post(f"/v1/jobs/{job.json()['id']}/cancel")).status_code == 202
    assert (await client.delete(f"/v1/datasets/{dataset['id']}")).status_code == 204
    assert not folder.exists()
    assert (await client.get(f"/v1/datasets/{dataset['id']}")).status_code == 404


def test_the_staging_folder_is_under_home(settings: Settings, tmp_path: Path) -> None:
    assert settings.dataset_storage_url == str((tmp_path / "datasets").resolve())
