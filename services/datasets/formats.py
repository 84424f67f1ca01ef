"""Uploaded files to float32 `.npy` files, a chunk of rows at a time, checked as they pass.

Each format has a reader: CSV (a header row, then numbers), `.npy` (one matrix whose
columns are named by their index), `.npz` (arrays `x` and `y`), JSON (`{"x", "y"}`,
parsed whole, hence its own smaller size limit) and Parquet (numeric columns). Readers
feed `ColumnsWriter`s, which refuse NaN, infinities and values beyond float32 naming
the row and column, keep per-column statistics, and append the rows to a `.npy` file
whose header is rewritten with the row count at the end. Nothing holds more than one
chunk of rows; the output is written with plain file writes, not a memory map, so the
pages written are not counted in this process's resident memory.

Every refusal is an `InvalidInput` naming `file` (the uploaded file) or the query
parameter at fault, with the row and column in its message.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from trainq.services.engine import InvalidData
from trainq.services.errors import InvalidInput

FORMATS = ("csv", "npy", "npz", "json", "parquet")
CHUNK_ROWS = 16_384
# longer than any header of column names (csv's own field limit is 128 KiB a name)
CSV_HEADER_MAX_CHARS = 1024 * 1024
# a data row: room for a million columns of 16-character numbers
CSV_ROW_MAX_CHARS = 16 * 1024 * 1024
# a chunk of rows ends at this many characters too, so that wide rows keep it small
CSV_CHUNK_MAX_CHARS = 64 * 1024 * 1024
# every .npy written here has a header of exactly this size, so the row count can be
# filled in at the end without moving the data
NPY_HEADER_BYTES = 128
_FLOAT32_MAX = float(np.finfo(np.float32).max)
RowLabel = Callable[[int], str]


def _rows_of(key: str) -> RowLabel:
    """Rows named as the array's elements: x[0], x[1], ..."""
    return lambda i: f"{key}[{i}]"


@dataclass(frozen=True)
class Columns:
    """Which columns are features and which targets, as the request named them (None: the
    default), and where it named them (`query.xColumns`, or the multipart field `xColumns`)."""

    x: tuple[str, ...] | None = None
    y: tuple[str, ...] | None = None
    x_field: str = field(default="xColumns", compare=False)
    y_field: str = field(default="yColumns", compare=False)


@dataclass(frozen=True)
class Parsed:
    rows: int
    x_names: list[str]
    y_names: list[str]
    summary: list[dict[str, Any]]  # per column: name, role, min, max, mean, std


def sniff(path: Path) -> str | None:
    """The format by the file's first bytes, when they tell."""
    with path.open("rb") as f:
        head = f.read(8)
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith(b"PK"):
        return "npz"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.lstrip()[:1] in (b"{",):
        return "json"
    return None


def convert(source: Path, fmt: str, columns: Columns, x_out: Path, y_out: Path, *, max_json_bytes: int) -> Parsed:
    """Read `source` as `fmt` and write its features to `x_out`, its targets to `y_out`."""
    if source.stat().st_size == 0:
        raise InvalidInput("file", "is empty")
    if fmt in ("npz", "json") and (columns.x is not None or columns.y is not None):
        named = columns.x_field if columns.x is not None else columns.y_field
        raise InvalidInput(named, f"a {fmt} file holds x and y apart: there are no columns to pick")
    with ColumnsWriter(x_out, "x") as x, ColumnsWriter(y_out, "y") as y:
        if fmt == "csv":
            _read_csv(source, columns, x, y)
        elif fmt == "npy":
            with source.open("rb") as f:
                _read_npy_matrix(f, columns, x, y, source.stat().st_size)
        elif fmt == "npz":
            _read_npz(source, x, y)
        elif fmt == "json":
            _read_json(source, x, y, max_json_bytes)
        elif fmt == "parquet":
            _read_parquet(source, columns, x, y)
        else:
            raise InvalidInput("format", f"must be one of {', '.join(FORMATS)}, not {fmt!r}")
        if x.rows != y.rows:
            raise InvalidInput("file", f"x has {x.rows} rows but y has {y.rows}")
        if x.rows == 0:
            raise InvalidInput("file", "holds no rows")
        return Parsed(x.rows, x.names, y.names, x.summary() + y.summary())


# --- the writer -----------------------------------------------------------------------


class ColumnsWriter:
    """Appends float32 rows to a `.npy` file, checking and summarising them."""

    def __init__(self, path: Path, role: str) -> None:
        self.path = path
        self.role = role
        self.names: list[str] = []
        self.rows = 0
        self._file: IO[bytes] | None = None
        self._count = 0
        self._mean: np.ndarray | None = None
        self._m2: np.ndarray | None = None
        self._min: np.ndarray | None = None
        self._max: np.ndarray | None = None

    def __enter__(self) -> ColumnsWriter:
        self._file = self.path.open("wb")
        self._file.write(b"\0" * NPY_HEADER_BYTES)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._file is not None
        if exc[0] is None:
            self._file.seek(0)
            self._file.write(_npy_header((self.rows, len(self.names))))
        self._file.close()

    def set_names(self, names: Sequence[str]) -> None:
        self.names = list(names)

    def write(self, values: np.ndarray, label: RowLabel = lambda i: f"row {i}") -> None:
        """Append rows (any real dtype, shape (rows, columns)); refuse a value that is not
        a finite float32 number, naming its row (by `label`) and column."""
        if values.dtype.kind == "f" or values.dtype.kind == "c":
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(values) | (np.abs(values) > _FLOAT32_MAX)
            if bad.any():
                i, j = (int(v) for v in np.argwhere(bad)[0])
                raise InvalidInput(
                    "file",
                    f"{label(self.rows + i)}, column {self.names[j]!r}: {float(values[i, j])!r} is not a finite "
                    "float32 number",
                )
        elif values.dtype.kind in "iu":
            big = np.abs(values.astype(np.float64)) > _FLOAT32_MAX
            if big.any():
                i, j = (int(v) for v in np.argwhere(big)[0])
                raise InvalidInput("file", f"{label(self.rows + i)}, column {self.names[j]!r}: too large for float32")
        chunk = np.ascontiguousarray(values, dtype=np.float32)
        assert self._file is not None
        self._file.write(chunk.tobytes())
        self._summarise(chunk)
        self.rows += chunk.shape[0]

    def _summarise(self, chunk: np.ndarray) -> None:
        # Chan's parallel update of mean and squared deviations, in float64
        if chunk.shape[0] == 0:
            return
        values = chunk.astype(np.float64)
        n = chunk.shape[0]
        mean = values.mean(axis=0)
        m2 = ((values - mean) ** 2).sum(axis=0)
        if self._mean is None:
            self._count, self._mean, self._m2 = n, mean, m2
            self._min, self._max = values.min(axis=0), values.max(axis=0)
            return
        assert self._m2 is not None and self._min is not None and self._max is not None
        total = self._count + n
        delta = mean - self._mean
        self._mean = self._mean + delta * (n / total)
        self._m2 = self._m2 + m2 + delta**2 * (self._count * n / total)
        self._count = total
        self._min = np.minimum(self._min, values.min(axis=0))
        self._max = np.maximum(self._max, values.max(axis=0))

    def summary(self) -> list[dict[str, Any]]:
        if self._mean is None:
            return []
        assert self._m2 is not None and self._min is not None and self._max is not None
        std = np.sqrt(self._m2 / self._count)
        return [
            {
                "name": name,
                "role": self.role,
                "min": float(self._min[j]),
                "max": float(self._max[j]),
                "mean": float(self._mean[j]),
                "std": float(std[j]),
            }
            for j, name in enumerate(self.names)
        ]


def _npy_header(shape: tuple[int, int]) -> bytes:
    """A version 1.0 `.npy` header for float32 C-ordered `shape`, padded to NPY_HEADER_BYTES."""
    text = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode("latin1")
    padded = text.ljust(NPY_HEADER_BYTES - 10 - 1) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(padded).to_bytes(2, "little") + padded


# --- column choice --------------------------------------------------------------------


def _pick(names: list[str], columns: Columns) -> tuple[list[int], list[int]]:
    """Indices of the x and y columns; by default the last column is y and the rest x."""
    index = {name: j for j, name in enumerate(names)}

    def lookup(wanted: tuple[str, ...], field: str) -> list[int]:
        missing = [name for name in wanted if name not in index]
        if missing:
            shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
            raise InvalidInput(field, f"no column {missing[0]!r}; the file's columns are {shown}")
        if not wanted:
            raise InvalidInput(field, "names no column")
        return [index[name] for name in wanted]

    if len(names) < 2 and (columns.x is None or columns.y is None):
        raise InvalidInput("file", f"has {len(names)} column; features and targets need two at least")
    y = lookup(columns.y, columns.y_field) if columns.y is not None else [len(names) - 1]
    x = lookup(columns.x, columns.x_field) if columns.x is not None else [j for j in range(len(names)) if j not in y]
    if not x:
        raise InvalidInput(columns.x_field, "no column is left for the features")
    return x, y


# --- CSV ------------------------------------------------------------------------------


def _read_csv(source: Path, columns: Columns, x: ColumnsWriter, y: ColumnsWriter) -> None:
    # utf-8-sig: a byte-order mark (as spreadsheets write) is not part of the first column's name
    with source.open("r", encoding="utf-8-sig", newline="") as f:
        try:
            # read no further than the limit: a file with no newline would otherwise be read whole
            line = f.readline(CSV_HEADER_MAX_CHARS + 1)
        except UnicodeDecodeError:
            raise InvalidInput("file", "is not UTF-8 text (a CSV file was expected)") from None
        if len(line) > CSV_HEADER_MAX_CHARS:
            raise InvalidInput(
                "file",
                f"line 1, the header row, is longer than {CSV_HEADER_MAX_CHARS} characters "
                "(is the file CSV, with one row per line?)",
            )
        try:
            header = next(csv.reader([line]), [])
        except csv.Error as error:  # a quoted name past csv's field limit
            raise InvalidInput("file", f"line 1, the header row, cannot be read as CSV ({error})") from None
        names = [name.strip() for name in header]
        if not any(names):
            raise InvalidInput("file", "line 1 must be a header row naming the columns")
        xi, yi = _pick(names, columns)
        x.set_names([names[j] for j in xi])
        y.set_names([names[j] for j in yi])
        first = 0
        while True:
            try:
                lines = _csv_lines(f, first)
            except UnicodeDecodeError:
                raise InvalidInput("file", f"is not UTF-8 text after row {first}") from None
            if not lines:
                return
            block = _csv_block(lines, names, first)
            x.write(block[:, xi], _csv_row)
            y.write(block[:, yi], _csv_row)
            first += len(lines)


def _csv_row(i: int) -> str:
    return f"row {i} (line {i + 2})"


def _csv_lines(f: IO[str], first: int) -> list[str]:
    """The next chunk of data rows: CHUNK_ROWS at most, cut short past CSV_CHUNK_MAX_CHARS."""
    lines: list[str] = []
    chars = 0
    while len(lines) < CHUNK_ROWS and chars < CSV_CHUNK_MAX_CHARS:
        # read no further than the limit: a row with no newline would otherwise be read whole
        line = f.readline(CSV_ROW_MAX_CHARS + 1)
        if not line:
            break
        if len(line) > CSV_ROW_MAX_CHARS:
            raise InvalidInput(
                "file",
                f"{_csv_row(first + len(lines))} is longer than {CSV_ROW_MAX_CHARS} characters "
                "(is the file CSV, with one row per line?)",
            )
        lines.append(line)
        chars += len(line)
    return lines


def _csv_block(lines: list[str], names: list[str], first: int) -> np.ndarray:
    try:
        with np.errstate(over="ignore"):
            block = np.loadtxt(lines, delimiter=",", dtype=np.float64, quotechar='"', ndmin=2, comments=None)
    except ValueError as error:
        _diagnose_csv(lines, names, first)
        raise InvalidInput("file", f"rows {first} to {first + len(lines) - 1}: {error}") from None
    if block.shape != (len(lines), len(names)):
        _diagnose_csv(lines, names, first)
        raise InvalidInput("file", f"rows {first} to {first + len(lines) - 1} do not have {len(names)} columns")
    return block


def _diagnose_csv(lines: list[str], names: list[str], first: int) -> None:
    """Find the row and cell numpy refused, and say what is wrong with it."""
    rows = csv.reader(lines)
    for offset in itertools.count():
        where = _csv_row(first + offset)
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error as error:  # a cell past csv's field limit: no number is that long
            raise InvalidInput("file", f"{where}: {error}") from None
        if len(row) != len(names):
            raise InvalidInput("file", f"{where}: ragged row of {len(row)} values; the header has {len(names)} columns")
        for name, cell in zip(names, row):
            try:
                float(cell)
            except ValueError:
                shown = cell if len(cell) <= 40 else cell[:40] + "..."
                raise InvalidInput("file", f"{where}, column {name!r}: {shown!r} is not a number") from None


# --- .npy and .npz --------------------------------------------------------------------


def _npy_layout(f: IO[bytes], what: str, size: int) -> tuple[tuple[int, ...], np.dtype]:
    """The array's shape and dtype from its header, checked against the `size` bytes of
    the whole .npy: a header may declare any shape, and nothing is sized from it first."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise InvalidInput("file", f"{what}: .npy format version {version} is not supported (1.0 and 2.0 are)")
    except ValueError as error:
        raise InvalidInput("file", f"{what} is not a .npy array ({error})") from None
    if dtype.hasobject or dtype.fields is not None or dtype.kind not in "biuf":
        raise InvalidInput("file", f"{what} holds {dtype} values, not real numbers")
    if fortran and len(shape) > 1:
        raise InvalidInput("file", f"{what} is Fortran-ordered; save it C-ordered (np.ascontiguousarray)")
    if len(shape) not in (1, 2):
        raise InvalidInput("file", f"{what} has shape {list(shape)}; a matrix (rows, columns) was expected")
    declared = math.prod(shape) * dtype.itemsize
    if declared > size - f.tell():
        raise InvalidInput(
            "file", f"{what} declares shape {list(shape)} ({declared} bytes) but holds {size - f.tell()} bytes"
        )
    return shape, dtype


def _npy_chunks(f: IO[bytes], shape: tuple[int, ...], dtype: np.dtype, what: str) -> Iterator[np.ndarray]:
    rows = shape[0]
    width = shape[1] if len(shape) == 2 else 1
    row_bytes = width * dtype.itemsize
    done = 0
    while done < rows:
        n = min(CHUNK_ROWS, rows - done)
        data = f.read(n * row_bytes)
        if len(data) < n * row_bytes:
            raise InvalidInput("file", f"{what} ends after {done + len(data) // max(row_bytes, 1)} of its {rows} rows")
        yield np.frombuffer(data, dtype=dtype).reshape(n, width)
        done += n


def _read_npy_matrix(f: IO[bytes], columns: Columns, x: ColumnsWriter, y: ColumnsWriter, size: int) -> None:
    shape, dtype = _npy_layout(f, "the .npy array", size)
    width = shape[1] if len(shape) == 2 else 1
    names = [str(j) for j in range(width)]
    xi, yi = _pick(names, columns)
    x.set_names([names[j] for j in xi])
    y.set_names([names[j] for j in yi])
    for chunk in _npy_chunks(f, shape, dtype, "the .npy array"):
        x.write(chunk[:, xi])
        y.write(chunk[:, yi])


def _read_npz(source: Path, x: ColumnsWriter, y: ColumnsWriter) -> None:
    try:
        archive = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise InvalidInput("file", "is not a .npz archive (not a zip file)") from None
    with archive:
        members = {name.removesuffix(".npy"): name for name in archive.namelist()}
        for key, writer in (("x", x), ("y", y)):
            if key not in members:
                raise InvalidInput(
                    "file", f"holds no array {key!r} (it holds: {', '.join(sorted(members)) or 'nothing'})"
                )
            what = f"array {key!r}"
            try:
                with archive.open(members[key]) as f:
                    shape, dtype = _npy_layout(f, what, archive.getinfo(members[key]).file_size)
                    width = shape[1] if len(shape) == 2 else 1
                    writer.set_names([f"{key}[{j}]" for j in range(width)])
                    for chunk in _npy_chunks(f, shape, dtype, what):
                        writer.write(chunk, _rows_of(key))
            except (zipfile.BadZipFile, zlib.error, EOFError) as error:
                raise InvalidInput("file", f"{what} is damaged in the archive ({error})") from None


# --- JSON and Parquet -----------------------------------------------------------------


def _read_json(source: Path, x: ColumnsWriter, y: ColumnsWriter, max_bytes: int) -> None:
    from trainq.services.spec import samples

    size = source.stat().st_size
    if size > max_bytes:
        raise InvalidInput(
            "file",
            f"a JSON dataset of {size} bytes is over the JSON limit of {max_bytes} bytes; upload CSV, .npy or .npz",
        )
    try:
        document = json.loads(source.read_bytes())
    except (ValueError, RecursionError) as error:
        raise InvalidInput("file", f"is not valid JSON ({error})") from None
    if not isinstance(document, dict) or "x" not in document or "y" not in document:
        raise InvalidInput("file", 'must be a JSON object {"x": [[...]], "y": [[...]]}')
    for key, writer in (("x", x), ("y", y)):
        rows = document[key]
        if not isinstance(rows, list):
            raise InvalidInput(f"file.{key}", "must be a list of rows")
        try:
            array = samples(rows, key)
        except InvalidData as error:
            raise InvalidInput.of(error).inside("file") from None
        except (TypeError, ValueError, OverflowError) as error:
            raise InvalidInput(f"file.{key}", f"must hold rows of numbers ({error})") from None
        if array.ndim != 2:
            raise InvalidInput(f"file.{key}", f"must be a list of rows of numbers, not of depth {array.ndim}")
        writer.set_names([f"{key}[{j}]" for j in range(array.shape[1])])
        for start in range(0, array.shape[0], CHUNK_ROWS):
            writer.write(array[start : start + CHUNK_ROWS], _rows_of(key))


def _read_parquet(source: Path, columns: Columns, x: ColumnsWriter, y: ColumnsWriter) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(source)
    except (pa.ArrowException, OSError) as error:
        raise InvalidInput("file", f"is not a Parquet file ({error})") from None
    names = list(parquet.schema_arrow.names)
    xi, yi = _pick(names, columns)
    for j in xi + yi:
        kind = parquet.schema_arrow.field(j).type
        if not (pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind)):
            raise InvalidInput("file", f"column {names[j]!r} holds {kind} values, not numbers")
    x.set_names([names[j] for j in xi])
    y.set_names([names[j] for j in yi])
    first = 0
    for batch in _parquet_batches(parquet, [names[j] for j in xi + yi]):
        arrays = []
        for j, column in zip(xi + yi, batch.columns):
            if column.null_count:
                row = first + int(np.flatnonzero(np.asarray(column.is_null()))[0])
                raise InvalidInput("file", f"row {row}, column {names[j]!r}: the value is missing (null)")
            arrays.append(column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False))
        block = np.stack(arrays, axis=1)
        x.write(block[:, : len(xi)])
        y.write(block[:, len(xi) :])
        first += batch.num_rows


def _parquet_batches(parquet: Any, names: list[str]) -> Iterator[Any]:
    import pyarrow as pa

    batches = parquet.iter_batches(batch_size=CHUNK_ROWS, columns=names)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except (pa.ArrowException, OSError) as error:  # a damaged page, found as it is read
            raise InvalidInput("file", f"is a damaged Parquet file ({error})") from None
        yield batch


def canonical_columns(columns: Columns) -> str:
    return json.dumps({"x": columns.x, "y": columns.y}, separators=(",", ":"))
