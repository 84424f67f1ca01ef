"""Where datasets' bytes live: a local folder or any S3-compatible store, one interface.

`TRAINQ_STORAGE_URL` picks it: a path (default `TRAINQ_HOME/datasets`; in a cluster, a
volume every worker mounts) or `s3://bucket/prefix` (through fsspec's s3fs; the
endpoint and keys come from the usual AWS variables, `AWS_ENDPOINT_URL` included).
Files are written whole from a local file and read back as a local path, because the
worker memory-maps them: from a folder that is the stored file itself, from S3 a copy
downloaded once into `TRAINQ_HOME/cache`.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path
from typing import Protocol

from trainq.services.settings import Settings


class Storage(Protocol):
    url: str

    def put(self, source: Path, key: str) -> None:
        """Store the local file `source` under `key`; `source` may be moved away."""

    def local_path(self, key: str) -> Path:
        """A local file holding `key`'s bytes, for np.load(mmap_mode="r")."""

    def delete(self, key: str) -> None:
        """Remove `key` (and any local copy of it); no error if it is gone."""


class FolderStorage:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = str(root)

    def put(self, source: Path, key: str) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        # a rename when both sit on one file system; a copy otherwise
        shutil.move(source, target)

    def local_path(self, key: str) -> Path:
        return self._path(key)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)
        try:
            self._path(key).parent.rmdir()
        except OSError:
            pass  # the folder holds the dataset's other file still

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"storage key {key!r} leaves the storage folder")
        return path


class FsspecStorage:
    """An fsspec file system (s3:// and the like) under a prefix, with a local read cache."""

    def __init__(self, url: str, cache: Path) -> None:
        import fsspec

        self.url = url
        self.fs, self.prefix = fsspec.core.url_to_fs(url)
        self.prefix = self.prefix.rstrip("/")
        self.cache = cache

    def put(self, source: Path, key: str) -> None:
        self.fs.put_file(str(source), self._remote(key))
        source.unlink(missing_ok=True)

    def local_path(self, key: str) -> Path:
        local = self.cache / key
        if not local.is_file():
            local.parent.mkdir(parents=True, exist_ok=True)
            # downloaded beside its final name, then renamed: a reader never sees half a file
            partial = local.with_name(f".{local.name}.{uuid.uuid4().hex}")
            try:
                self.fs.get_file(self._remote(key), str(partial))
                os.replace(partial, local)
            finally:
                partial.unlink(missing_ok=True)
        return local

    def delete(self, key: str) -> None:
        try:
            self.fs.rm_file(self._remote(key))
        except FileNotFoundError:
            pass
        (self.cache / key).unlink(missing_ok=True)

    def _remote(self, key: str) -> str:
        return f"{self.prefix}/{key}"


def storage_for(settings: Settings) -> Storage:
    url = settings.dataset_storage_url
    if "://" in url and not url.startswith("file://"):
        return FsspecStorage(url, (settings.home / "cache").resolve())
    return FolderStorage(Path(url.removeprefix("file://")))
