"""`trainq datasets upload FILE` (streamed, with a progress bar) and `trainq datasets list`.

The file is sent as the raw body of POST /v1/datasets, read from disk a chunk at a
time, so a file larger than memory uploads as well as a small one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from trainq.services.client import DEFAULT_URL, NotAuthenticated, auth_headers

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


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer")] = False,
    limit: Annotated[int, typer.Option(min=1, max=200, help="Datasets to show")] = 50,
    url: Url = DEFAULT_URL,
) -> None:
    """The datasets, newest first."""
    try:
        response = httpx.get(f"{url}/v1/datasets", params={"limit": limit}, headers=auth_headers(), timeout=30)
    except httpx.HTTPError as error:
        err.print(f"trainq: cannot reach {url} ({error})")
        raise typer.Exit(1) from None
    _fail_unless_ok(response)
    page = response.json()
    if as_json:
        out.print(json.dumps(page))
        return
    table = Table("id", "name", "format", "rows", "x", "y", "bytes", "created")
    for d in page["items"]:
        table.add_row(
            d["id"],
            d["name"] or "",
            d["format"],
            str(d["rows"]),
            str(d["xShape"][1]),
            str(d["yShape"][1]),
            str(d["byteSize"]),
            d["createdAt"],
        )
    out.print(table)


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
