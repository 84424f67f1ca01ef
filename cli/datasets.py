"""`trainq datasets upload FILE` (streamed, with a progress bar), `list`, `show ID`, `delete ID`.

The file is sent as the raw body of POST /v1/datasets, read from disk a chunk at a
time, so a file larger than memory uploads as well as a small one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from trainq.cli.jobs import (
    AsJson,
    Format,
    _number,
    _print_json,
    by_id,
    list_command,
    short,
    table,
)
from trainq.services.client import DEFAULT_URL, NotAuthenticated, auth_headers

if TYPE_CHECKING:
    import httpx

CHUNK_BYTES = 1024 * 1024
UPLOAD_TIMEOUT_SECONDS = 3600.0

app = typer.Typer(no_args_is_help=True, help="Upload datasets once, then train jobs on them by id.")
Url = Annotated[str, typer.Option("--url", envvar="TRAINQ_URL", help="The trainq API to talk to")]
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


@app.command()
def upload(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="CSV, .npy, .npz, JSON or Parquet")],
    x_columns: Annotated[str | None, typer.Option(help="Comma-separated feature columns (default: all but y)")] = None,
    y_columns: Annotated[str | None, typer.Option(help="Comma-separated target columns (default: the last)")] = None,
    name: Annotated[str | None, typer.Option(help="A label for the dataset")] = None,
    format_: Annotated[
        str | None, typer.Option("--format", help="csv, npy, npz, json or parquet (default: by suffix)")
    ] = None,
    progress: Annotated[bool, typer.Option(help="A progress bar on stderr")] = True,
    url: Url = DEFAULT_URL,
) -> None:
    """Upload FILE as a dataset; print its id (the same id for the same content)."""
    import httpx

    params = {
        key: value
        for key, value in {
            "xColumns": x_columns,
            "yColumns": y_columns,
            "name": name,
            "format": format_ or (file.suffix.lstrip(".").lower() or None),
        }.items()
        if value is not None
    }
    size = file.stat().st_size
    bar = Progress(
        TextColumn("upload"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err,
        disable=not progress,
    )
    with bar:
        task = bar.add_task("upload", total=size)

        def chunks() -> Iterator[bytes]:
            with file.open("rb") as f:
                while chunk := f.read(CHUNK_BYTES):
                    bar.advance(task, len(chunk))
                    yield chunk

        try:
            response = httpx.post(
                f"{url}/v1/datasets",
                params=params,
                content=chunks(),
                headers={"Content-Length": str(size), **auth_headers()},
                timeout=UPLOAD_TIMEOUT_SECONDS,
            )
        except httpx.HTTPError as error:
            err.print(f"trainq: cannot reach {url} ({error})")
            raise typer.Exit(1) from None
    _fail_unless_ok(response)
    dataset = response.json()
    verb = "uploaded" if response.status_code == 201 else "already there:"
    err.print(f"{verb} dataset {dataset['id']}: {dataset['rows']} rows, x {dataset['xShape']}, y {dataset['yShape']}")
    out.print(dataset["id"])


DatasetId = Annotated[str, typer.Argument(help="The dataset's id, or any unique start of it (`list` shows 8)")]


def _dataset_headers(form: Format) -> tuple[str, ...]:
    return ("ID", "FORMAT", "ROWS", "X", "Y", "BYTES", *(("CREATED",) if form is Format.wide else ()), "NAME")


def _dataset_row(d: dict[str, Any], form: Format) -> tuple[str, ...]:
    created = (d["createdAt"][:19].replace("T", " "),) if form is Format.wide else ()
    return (
        short(d["id"], form),
        d["format"],
        str(d["rows"]),
        str(d["xShape"][1]),
        str(d["yShape"][1]),
        _size(d["byteSize"]) if form is Format.table else str(d["byteSize"]),
        *created,
        escape(d["name"] or ""),
    )


app.command("list", help="The datasets, newest first.")(
    list_command("datasets", lambda client, limit: client.datasets(limit=limit), _dataset_headers, _dataset_row)
)


@app.command()
def show(dataset_id: DatasetId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """A dataset: its shapes, format, size and each column's summary."""
    _, found = by_id(url, "datasets", dataset_id, lambda client, whole_id: client.dataset(whole_id))
    if as_json:
        _print_json(found)
        return
    grid = Table.grid(padding=(0, 2))
    for key, value in (
        ("id", found["id"]),
        ("name", escape(found["name"] or "")),
        ("format", found["format"]),
        ("x", "x".join(map(str, found["xShape"]))),
        ("y", "x".join(map(str, found["yShape"]))),
        ("bytes", str(found["byteSize"])),
        ("sha256", found["sha256"]),
        ("created", found["createdAt"]),
    ):
        grid.add_row(f"[bold]{key}[/]", value)
    out.print(grid)
    columns = table()
    for header in ("COLUMN", "ROLE", "MIN", "MAX", "MEAN", "STD"):
        columns.add_column(header, justify="left" if header in ("COLUMN", "ROLE") else "right")
    for column in found.get("columns") or []:
        columns.add_row(
            escape(str(column["name"])),
            column["role"],
            *(_number(column.get(key), 4) for key in ("min", "max", "mean", "std")),
        )
    if found.get("columns"):
        out.print(columns)


@app.command()
def delete(dataset_id: DatasetId, url: Url = DEFAULT_URL) -> None:
    """Delete a dataset and its stored files (refused while a queued or running job uses it)."""
    dataset_id, _ = by_id(url, "datasets", dataset_id, lambda client, whole_id: client.delete_dataset(whole_id))
    err.print(f"deleted dataset {dataset_id}")


def _size(byte_size: int) -> str:
    """1536 -> 1.5K: at most 6 characters."""
    size = float(byte_size)
    for unit in ("", "K", "M", "G"):
        if size < 1024 or unit == "G":
            return f"{size:.0f}{unit}" if unit == "" else f"{size:.1f}{unit}"
        size /= 1024
    return str(byte_size)


def _fail_unless_ok(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        body = response.json()
        hint = f" {NotAuthenticated.HINT}" if response.status_code == 401 else ""
        err.print(f"trainq: {response.status_code}: {body['detail']}{hint}")
        for error in body.get("errors", []):
            err.print(f"  {error['field']}: {error['message']}")
    except (ValueError, KeyError, TypeError):
        err.print(f"trainq: {response.status_code}: {response.text[:500]}")
    raise typer.Exit(1)
