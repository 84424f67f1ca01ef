"""Datasets on an S3-compatible store (a real moto server over HTTP), chosen by
TRAINQ_STORAGE_URL: uploaded there, read back memory-mapped, deleted from it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import fsspec
import numpy as np
import pytest

from tests.api.conftest import asgi_client
from tests.support.s3 import S3Server
from trainq.api.app import create_app
from trainq.services.settings import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def s3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    with S3Server(tmp_path / "moto.log") as server:
        for key, value in server.environment().items():
            monkeypatch.setenv(key, value)
        fsspec.filesystem("s3", skip_instance_cache=True).mkdir("trainq-test")
        yield server


async def test_a_dataset_goes_to_s3_is_read_back_mapped_and_deleted_from_it(s3: S3Server, settings: Settings) -> None:
    on_s3 = settings.model_copy(update={"storage_url": "s3://trainq-test/datasets"})
    x = np.arange(12, dtype=np.float32).reshape(6, 2) / 10
    buffer = io.BytesIO()
    np.savez(buffer, x=x, y=x[:, :1] * 2)
    s3fs = fsspec.filesystem("s3", skip_instance_cache=True)
    async with asgi_client(create_app(on_s3)) as client:
        response = await client.post("/v1/datasets", content=buffer.getvalue())
        assert response.status_code == 201, response.text
        dataset_id = response.json()["id"]
        keys = sorted(s3fs.ls(f"trainq-test/datasets/datasets/{dataset_id}"))
        assert keys == [f"trainq-test/datasets/datasets/{dataset_id}/{name}" for name in ("x.npy", "y.npy")]
        with s3fs.open(keys[0], "rb") as f:
            np.testing.assert_array_equal(np.load(f), x)

        from trainq.services.datasets.jobs import mapped
        from trainq.services.datasets.storage import storage_for
        from trainq.services.db.models import Dataset
        from trainq.services.db.session import session_factory

        with session_factory(on_s3)() as session:
            stored = session.get(Dataset, dataset_id)
            assert stored is not None
            mx, my = mapped(storage_for(on_s3), stored)
        assert isinstance(mx, np.memmap) and str(on_s3.home.resolve() / "cache") in str(mx.filename)
        np.testing.assert_array_equal(mx, x)
        np.testing.assert_array_equal(my, x[:, :1] * 2)

        assert (await client.delete(f"/v1/datasets/{dataset_id}")).status_code == 204
        s3fs.invalidate_cache()
        assert not s3fs.exists(keys[0]) and not s3fs.exists(keys[1])
        assert mx.filename is not None and not Path(mx.filename).exists()
