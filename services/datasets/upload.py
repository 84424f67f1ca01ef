"""Receiving an upload: the body, as it arrives, into a staging file, hashed on the way.

Two shapes of request carry a file: a raw body (its Content-Type or `?format=` tells
the format) and `multipart/form-data` with one file part (its filename or Content-Type
tells) beside optional text fields (`format`, `xColumns`, `yColumns`, `name`). Both go
through `Receiver.feed(chunk)`, chunk by chunk, so no more than a chunk is ever held;
the multipart form is parsed by python-multipart's streaming parser.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import IO, TYPE_CHECKING

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from trainq.services.datasets.formats import FORMATS
from trainq.services.errors import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    # the parser's own TypedDict, defined for type checkers only
    from python_multipart.multipart import MultipartCallbacks

FIELD_LIMIT_BYTES = 64 * 1024
FORM_FIELDS = ("format", "xColumns", "yColumns", "name")
_MEDIA_FORMATS = {
    "text/csv": "csv",
    "application/csv": "csv",
    "application/x-npy": "npy",
    "application/npy": "npy",
    "application/x-npz": "npz",
    "application/zip": "npz",
    "application/json": "json",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}


def format_of(media_type: str | None, filename: str | None) -> str | None:
    """The format a media type or a file name says, if any."""
    if filename and "." in filename:
        suffix = filename.rsplit(".", 1)[1].lower()
        if suffix in FORMATS:
            return suffix
    if media_type:
        return _MEDIA_FORMATS.get(media_type.split(";", 1)[0].strip().lower())
    return None


class StagedFile:
    """A file written chunk by chunk, with its sha256 and size, refused past `max_bytes`."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self._hash = hashlib.sha256()
        self._file: IO[bytes] = path.open("wb")

    def write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.max_bytes:
            raise PayloadTooLarge("file", f"is larger than the dataset limit of {self.max_bytes} bytes")
        self._hash.update(data)
        self._file.write(data)

    def close(self) -> None:
        self._file.close()

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


class Receiver:
    """Takes the request body chunk by chunk; `file` holds the dataset's bytes after `finish`."""

    def __init__(self, folder: Path, content_type: str | None, max_bytes: int) -> None:
        self.file = StagedFile(folder / "upload", max_bytes)
        self.fields: dict[str, str] = {}
        media_type, options = parse_options_header(content_type or "")
        self.media_type: str | None = media_type.decode("latin-1").lower() or None
        self.filename: str | None = None
        self.part_media_type: str | None = None
        self._parser: MultipartParser | None = None
        if self.media_type == "multipart/form-data":
            boundary = options.get(b"boundary")
            if not boundary:
                raise InvalidInput("header.Content-Type", "multipart/form-data needs a boundary")
            self._parser = MultipartParser(boundary, self._callbacks())
            self._files_seen = 0
            self._complete = False  # the closing boundary came

    def feed(self, chunk: bytes) -> None:
        if self._parser is None:
            self.file.write(chunk)
            return
        try:
            self._parser.write(chunk)
        except MultipartParseError as error:
            raise InvalidInput("body", f"is not a valid multipart form ({error})") from None

    def finish(self) -> None:
        if self._parser is not None:
            try:
                self._parser.finalize()
            except MultipartParseError as error:
                raise InvalidInput("body", f"is not a valid multipart form ({error})") from None
            if self._files_seen == 0:
                raise InvalidInput("body", "the multipart form holds no file part")
            if not self._complete:
                # a body cut short would otherwise be stored as a shorter dataset
                raise InvalidInput(
                    "body", "the multipart form ends before its closing boundary (the upload was cut short)"
                )
        self.file.close()

    def close(self) -> None:
        self.file.close()

    @property
    def raw_media_type(self) -> str | None:
        return self.part_media_type if self._parser is not None else self.media_type

    # --- the multipart parser's callbacks ---

    def _callbacks(self) -> MultipartCallbacks:
        header_field = bytearray()
        header_value = bytearray()
        headers: dict[bytes, bytes] = {}
        part: dict[str, object] = {}

        def on_part_begin() -> None:
            headers.clear()
            part.clear()

        def on_header_field(data: bytes, start: int, end: int) -> None:
            header_field.extend(data[start:end])

        def on_header_value(data: bytes, start: int, end: int) -> None:
            header_value.extend(data[start:end])

        def on_header_end() -> None:
            headers[bytes(header_field).lower()] = bytes(header_value)
            header_field.clear()
            header_value.clear()

        def on_headers_finished() -> None:
            _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
            name = disposition.get(b"name", b"").decode("utf-8", "replace")
            filename = disposition.get(b"filename")
            if filename is not None:
                if self._files_seen:
                    raise InvalidInput("body", "the multipart form holds more than one file part")
                self._files_seen += 1
                self.filename = filename.decode("utf-8", "replace")
                self.part_media_type = headers.get(b"content-type", b"").decode("latin-1") or None
                part["kind"] = "file"
            elif name in FORM_FIELDS:
                part["kind"] = "field"
                part["name"] = name
                part["value"] = bytearray()
            else:
                raise InvalidInput(
                    f"body.{name}" if name else "body",
                    f"unknown form field; expected a file part and {', '.join(FORM_FIELDS)}",
                )

        def on_part_data(data: bytes, start: int, end: int) -> None:
            if part.get("kind") == "file":
                self.file.write(data[start:end])
            else:
                value = part["value"]
                assert isinstance(value, bytearray)
                value.extend(data[start:end])
                if len(value) > FIELD_LIMIT_BYTES:
                    raise InvalidInput(f"body.{part['name']}", f"is longer than {FIELD_LIMIT_BYTES} bytes")

        def on_part_end() -> None:
            if part.get("kind") == "field":
                value = part["value"]
                assert isinstance(value, bytearray)
                self.fields[str(part["name"])] = value.decode("utf-8", "replace")

        def on_end() -> None:
            self._complete = True

        return {
            "on_end": on_end,
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        }
