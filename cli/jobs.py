"""The `trainq` commands that talk to a running trainq over HTTP: submit, jobs, show,
history, weights, evaluate, predict, cancel, watch.

`--url` (or TRAINQ_URL) picks the server; `--json` prints the API's answer as it came,
for scripts. An error answer prints its detail and each field at fault on stderr and
exits 1; a spec or data file that cannot be read exits 2.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trainq.cli.watch import summary, watch_job
from trainq.services.client import DEFAULT_URL, ApiError, ClientError, Job, Matrix, NotAuthenticated, TrainqClient

Url = Annotated[str, typer.Option("--url", envvar="TRAINQ_URL", help="The trainq API to talk to")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer instead of a table")]
JobId = Annotated[str, typer.Argument(help="The job's id, as `trainq submit` or `trainq jobs` shows it")]
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def register(app: typer.Typer) -> None:
    for command in (submit, jobs, show, history, weights, evaluate, predict, cancel, watch):
        app.command()(command)


def submit(
    spec: Annotated[Path, typer.Argument(help="A job spec JSON file (model, compile, fit, data; name, device)")],
    watch: Annotated[bool, typer.Option("--watch", help="Then show its progress until it finishes")] = False,
    name: Annotated[str | None, typer.Option(help="Name the job (overrides the file's name)")] = None,
    device: Annotated[str | None, typer.Option(help="cpu, gpu or auto (overrides the file's device)")] = None,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """Submit the training job in SPEC; with --watch, follow it epoch by epoch."""
    document = _read_json(spec)
    with _client(url) as client:
        job = _call(lambda: client.submit(document, name=name, device=device))
        if as_json and not watch:
            _print_json(job.raw)
            return
        err.print(f"submitted job {job.id}{_named(job)}: {job.status}")
        if not as_json:
            out.print(job.id)
        if watch:
            _finish(_call(lambda: watch_job(client, job.id, err)), as_json)


def jobs(
    status: Annotated[str | None, typer.Option(help=f"Only jobs in this state: {', '.join(STATUSES)}")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many, newest first")] = 50,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """List jobs, newest first."""
    with _client(url) as client:
        page = _call(lambda: client.jobs(status=status, limit=limit))
    if as_json:
        _print_json({"items": [job.raw for job in page.items], "nextCursor": page.next_cursor})
        return
    if not page.items:
        err.print(f"no {status + ' ' if status else ''}jobs at {url}")
        return
    table = Table(box=None, header_style="bold")
    columns = _job_columns(out.width)
    for header, _ in columns:
        table.add_column(
            header,
            no_wrap=True,
            overflow="ellipsis",
            min_width=_ID_WIDTH if header == "ID" else None,
            max_width=24 if header == "NAME" else None,
        )
    for job in page.items:
        table.add_row(*(cell(job) for _, cell in columns))
    out.print(table)


def show(job_id: JobId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """A job: status, progress, latest metrics, worker, times, error."""
    with _client(url) as client:
        job = _call(lambda: client.job(job_id))
    if as_json:
        _print_json(job.raw)
        return
    table = Table.grid(padding=(0, 2))
    rows: list[tuple[str, str]] = [
        ("id", job.id),
        ("name", escape(job.name or "")),
        ("status", f"[{_COLOURS[job.status]}]{job.status}[/]"),
        ("progress", f"epoch {job.progress.epoch} of {job.progress.epochs}"),
        ("device", job.device),
        ("worker", escape(job.worker or "")),
        ("attempt", str(job.attempt)),
        ("created", job.created_at.isoformat()),
        ("started", job.started_at.isoformat() if job.started_at else ""),
        ("finished", job.finished_at.isoformat() if job.finished_at else ""),
    ]
    if job.duration is not None:
        rows.append(("duration", f"{job.duration:.1f} s"))
    if job.reason and job.status == "queued":
        rows.append(("waiting", escape(job.reason)))
    if job.cancel_requested and not job.finished:
        rows.append(("cancel", "requested"))
    rows += [(key, _number(value)) for key, value in (job.metrics or {}).items()]
    if job.error:
        rows.append(("error", escape(job.error)))
    for key, value in rows:
        table.add_row(f"[bold]{key}[/]", value)
    out.print(table)


def history(
    job_id: JobId,
    as_csv: Annotated[bool, typer.Option("--csv", help="Comma-separated values, one row per epoch")] = False,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """The logs of every finished epoch: loss, val_loss, metrics, wall time."""
    with _client(url) as client:
        epochs = _call(lambda: client.history(job_id))
    if as_json:
        _print_json(
            {"jobId": job_id, "epochs": [{"epoch": e.epoch, "logs": e.logs, "wallTime": e.wall_time} for e in epochs]}
        )
        return
    keys = sorted(dict.fromkeys(key for epoch in epochs for key in epoch.logs), key=_log_key_order)
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["epoch", *keys, "wallTime"])
        for epoch in epochs:
            writer.writerow([epoch.epoch, *(_csv_value(epoch.logs.get(k)) for k in keys), epoch.wall_time])
        return
    if not epochs:
        err.print(f"job {job_id} has no finished epoch yet")
        return
    table = Table(box=None, header_style="bold")
    for column in ("EPOCH", *(key.upper() for key in keys), "SECONDS"):
        table.add_column(column, justify="right")
    for epoch in epochs:
        table.add_row(str(epoch.epoch), *(_number(epoch.logs.get(k)) for k in keys), f"{epoch.wall_time:.3f}")
    out.print(table)


def weights(job_id: JobId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """The final weights of a succeeded job, layer by layer: kernel, then bias."""
    with _client(url) as client:
        arrays = _call(lambda: client.weights(job_id))
    if as_json:
        _print_json({"weights": [{"shape": w.shape, "values": w.values} for w in arrays]})
        return
    layer = 0
    for array in arrays:
        # getWeights() order: each Dense layer's kernel (2-D), then its bias (1-D) if it has one
        layer += len(array.shape) == 2
        kind = "kernel" if len(array.shape) == 2 else "bias"
        out.print(f"[bold]layer {layer} {kind}[/] {'x'.join(map(str, array.shape))}")
        for row in array.values if len(array.shape) == 2 else [array.values]:
            out.print("  " + "  ".join(f"{value:>12.6g}" for value in row))


def evaluate(
    job_id: JobId,
    data: Annotated[Path, typer.Argument(help='A JSON file {"x": [[...]], "y": [[...]]} (- for stdin)')],
    batch_size: Annotated[int | None, typer.Option(min=1, help="Rows per batch")] = None,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """The trained model's loss and metrics on the data in DATA."""
    document = _read_json(data)
    x, y = _rows(document, "x", data), _rows(document, "y", data)
    with _client(url) as client:
        answer = _call(lambda: client.evaluate(job_id, x, y, batch_size=batch_size))
    if as_json:
        _print_json({"loss": answer.loss, "metrics": answer.metrics})
        return
    for key, value in {"loss": answer.loss, **answer.metrics}.items():
        out.print(f"{key} {_number(value)}")


def predict(
    job_id: JobId,
    data: Annotated[Path, typer.Argument(help='A JSON file {"x": [[...]]} (- for stdin)')],
    batch_size: Annotated[int | None, typer.Option(min=1, help="Rows per batch")] = None,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """The trained model's outputs for the inputs in DATA, one row per sample."""
    x = _rows(_read_json(data), "x", data)
    with _client(url) as client:
        predictions = _call(lambda: client.predict(job_id, x, batch_size=batch_size))
    if as_json:
        _print_json({"predictions": predictions})
        return
    for row in predictions:
        out.print(" ".join(_number(value) for value in row))


def cancel(job_id: JobId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """Cancel a job: a queued one never starts, a running one stops once its worker learns of it."""
    with _client(url) as client:
        job = _call(lambda: client.cancel(job_id))
    if as_json:
        _print_json(job.raw)
    elif job.status == "cancelled":
        out.print(f"job {job.id}{_named(job)}: cancelled")
    else:
        out.print(
            f"job {job.id}{_named(job)}: cancel requested; it is {job.status} and stops once its worker learns of it"
        )


def watch(job_id: JobId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """Follow a job epoch by epoch until it finishes. Ctrl-C stops watching, not the job."""
    with _client(url) as client:
        _finish(_call(lambda: watch_job(client, job_id, err)), as_json)


# --- shared by the commands -----------------------------------------------------

_COLOURS = {"queued": "yellow", "running": "blue", "succeeded": "green", "failed": "red", "cancelled": "magenta"}


_ID_WIDTH = 36
_JOB_COLUMNS: list[tuple[str, Callable[[Job], str]]] = [
    ("ID", lambda job: job.id),
    ("NAME", lambda job: escape(job.name or "")),
    ("STATUS", lambda job: f"[{_COLOURS[job.status]}]{job.status}[/]"),
    ("EPOCH", lambda job: f"{job.progress.epoch}/{job.progress.epochs}"),
    ("LOSS", lambda job: _number((job.metrics or {}).get("loss"), 4)),
    ("VAL_LOSS", lambda job: _number((job.metrics or {}).get("val_loss"), 4)),
    ("DEVICE", lambda job: job.device),
    ("WORKER", lambda job: escape(job.worker or "")),
    ("CREATED", lambda job: job.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")),
]


def _job_columns(width: int) -> list[tuple[str, Callable[[Job], str]]]:
    """The id stays whole, to be pasted into the next command: on a narrower terminal the
    columns on the right give way instead."""
    shown = 5 if width < 100 else 7 if width < 150 else len(_JOB_COLUMNS)
    return _JOB_COLUMNS[:shown]


def _client(url: str) -> TrainqClient:
    return TrainqClient(url)


def _call(request: Any) -> Any:
    """Run one client call; an error answer becomes a message on stderr and exit 1."""
    try:
        return request()
    except NotAuthenticated as error:
        err.print(f"trainq: {error}", markup=False)
        raise typer.Exit(1) from None
    except ApiError as error:
        err.print(f"trainq: {error.detail}", markup=False)
        # one error is the detail already; several are listed, each naming its field
        for item in error.errors if len(error.errors) > 1 else ():
            err.print(f"  {item.field}: {item.message}", markup=False)
        raise typer.Exit(1) from None
    except ClientError as error:
        err.print(f"trainq: {error}", markup=False)
        raise typer.Exit(1) from None


def _finish(job: Job | None, as_json: bool) -> None:
    """After watching: the final job (exit 0 only if it succeeded); None if Ctrl-C stopped it."""
    if job is None:
        raise typer.Exit(130)
    if as_json:
        _print_json(job.raw)
    else:
        out.print(summary(job))
    if job.status != "succeeded":
        raise typer.Exit(1)


def _log_key_order(key: str) -> tuple[str, bool]:
    """loss first, then each metric, each validation key right after its training key
    (the database may keep a job's logs in another order)."""
    base = key.removeprefix("val_")
    return ("" if base == "loss" else base, key.startswith("val_"))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text()
        document = json.loads(text)
    except (OSError, ValueError) as error:
        err.print(f"trainq: cannot read {path}: {error}", markup=False)
        raise typer.Exit(2) from None
    if not isinstance(document, dict):
        err.print(f"trainq: {path} must hold a JSON object", markup=False)
        raise typer.Exit(2)
    return document


def _rows(document: dict[str, Any], key: str, path: Path) -> Matrix:
    if key not in document:
        err.print(f"trainq: {path} holds no {key!r}", markup=False)
        raise typer.Exit(2)
    return document[key]


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2) + "\n")


def _named(job: Job) -> str:
    return f" ({escape(job.name)})" if job.name else ""


def _number(value: float | None, digits: int = 6) -> str:
    return "" if value is None else f"{value:.{digits}g}"


def _csv_value(value: float | None) -> str:
    return "" if value is None else repr(value)
