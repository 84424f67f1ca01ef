"""The `trainq` commands that talk to a running trainq over HTTP: submit, jobs (and jobs
delete), show, history, weights, evaluate, predict, cancel, watch.

`--url` (or TRAINQ_URL) picks the server; `-o json` (or `--json`) prints the API's answer
as it came, for scripts. Tables fit 80 columns and show short ids (the first 8
characters, as the dashboard does); `--wide` (`-o wide`) shows every column and whole
ids. Wherever a command takes an id, any unique prefix of it will do. An error answer
prints its detail and each field at fault on stderr and exits 1; a spec or data file that
cannot be read exits 2.
"""

from __future__ import annotations

import csv
import functools
import inspect
import json
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trainq.cli.watch import summary, watch_job
from trainq.services.client import DEFAULT_URL, ApiError, ClientError, Job, Matrix, NotAuthenticated, TrainqClient

Url = Annotated[str, typer.Option("--url", envvar="TRAINQ_URL", help="The trainq API to talk to")]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer instead of a table (-o json)")]
JobId = Annotated[
    str, typer.Argument(help="The job's id, or any unique start of it (`trainq jobs` shows 8 characters)")
]


class Format(StrEnum):
    table = "table"  # fits 80 columns: short ids, the columns that matter most
    wide = "wide"  # every column, whole ids
    json = "json"  # the API's answer as it came


Output = Annotated[
    Format | None, typer.Option("--output", "-o", help="table (80 columns, short ids), wide (whole ids) or json")
]
Wide = Annotated[bool, typer.Option("--wide", help="Every column and whole ids (-o wide)")]
# a list shows one page: the API answers 200 items at the most
Limit = Annotated[int, typer.Option(min=1, max=200, help="How many, newest first")]
BatchSize = Annotated[int | None, typer.Option(min=1, help="Rows per batch")]
SHORT_ID = 8
Answer = TypeVar("Answer")
STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


jobs_app = typer.Typer(invoke_without_command=True, help="List jobs, newest first; `jobs delete ID` deletes one.")


def register(app: typer.Typer) -> None:
    for command in (submit, show, history, weights, evaluate, predict, cancel, watch):
        app.command()(command)
    app.add_typer(jobs_app, name="jobs")


def output_format(output: Format | None, wide: bool, as_json: bool) -> Format:
    return Format.json if as_json else output or (Format.wide if wide else Format.table)


# what `formatted` adds to a command, after its own parameters
_FORMAT_OPTIONS = (
    inspect.Parameter("output", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Output),
    inspect.Parameter("wide", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=Wide),
    inspect.Parameter("as_json", inspect.Parameter.KEYWORD_ONLY, default=False, annotation=AsJson),
)


def formatted(command: Callable[..., None]) -> Callable[..., None]:
    """`command`, which takes the Format to print in as `form`, with the options that choose it (--output/-o,
    --wide, --json) after its own: Typer has no group of options that commands share, so the one declaration
    of them is this signature, which Typer reads."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "form"]

    @functools.wraps(command)
    def with_format(*args: Any, output: Format | None, wide: bool, as_json: bool, **kwargs: Any) -> None:
        command(*args, form=output_format(output, wide, as_json), **kwargs)

    # a function's attribute that mypy does not know of; inspect.signature, and so Typer, reads it
    with_format.__signature__ = inspect.Signature([*own, *_FORMAT_OPTIONS])  # type: ignore[attr-defined]  # see above
    return with_format


def short(identifier: str, form: Format) -> str:
    return identifier if form is Format.wide else identifier[:SHORT_ID]


def table(*headers: str) -> Table:
    """A borderless table whose columns are two spaces apart, none on the edges: free text
    (a name, a list of jobs, a point) wraps, in the last column, rather than be cut; numbers
    are right-justified."""
    shown = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1))
    for header in headers:
        shown.add_column(header, no_wrap=header not in _FREE_TEXT, justify="right" if header in _NUMBERS else "left")
    return shown


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


@jobs_app.callback()
@formatted
def jobs(
    context: typer.Context,
    status: Annotated[str | None, typer.Option(help=f"Only jobs in this state: {', '.join(STATUSES)}")] = None,
    limit: Limit = 50,
    url: Url = DEFAULT_URL,
    *,
    form: Format,
) -> None:
    """List jobs, newest first."""
    if context.invoked_subcommand is not None:
        return
    with _client(url) as client:
        page = _call(lambda: client.jobs(status=status, limit=limit))
    if form is Format.json:
        _print_json({"items": [job.raw for job in page.items], "nextCursor": page.next_cursor})
        return
    if not page.items:
        err.print(f"no {status + ' ' if status else ''}jobs at {url}")
        return
    columns = _JOB_COLUMNS if form is Format.wide else _NARROW_JOB_COLUMNS
    shown = table(*(header for header, _ in columns))
    for job in page.items:
        shown.add_row(*(cell(job, form) for _, cell in columns))
    out.print(shown)


@jobs_app.command("delete")
def delete_job(job_id: JobId, url: Url = DEFAULT_URL) -> None:
    """Delete a job that has ended, with its history, weights and evaluations (cancel a running one first)."""
    job_id, _ = by_id(url, "jobs", job_id, lambda client, whole_id: client.delete_job(whole_id))
    err.print(f"deleted job {job_id}")


def show(job_id: JobId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """A job: status, progress, latest metrics, worker, times, error."""
    job_id, job = by_id(url, "jobs", job_id, lambda client, whole_id: client.job(whole_id))
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
    job_id, epochs = by_id(url, "jobs", job_id, lambda client, whole_id: client.history(whole_id))
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
    job_id, arrays = by_id(url, "jobs", job_id, lambda client, whole_id: client.weights(whole_id))
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
    batch_size: BatchSize = None,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """The trained model's loss and metrics on the data in DATA."""
    document = _read_json(data)
    x, y = _rows(document, "x", data), _rows(document, "y", data)
    _, answer = by_id(
        url, "jobs", job_id, lambda client, whole_id: client.evaluate(whole_id, x, y, batch_size=batch_size)
    )
    if as_json:
        _print_json({"loss": answer.loss, "metrics": answer.metrics})
        return
    for key, value in {"loss": answer.loss, **answer.metrics}.items():
        out.print(f"{key} {_number(value)}")


def predict(
    job_id: JobId,
    data: Annotated[Path, typer.Argument(help='A JSON file {"x": [[...]]} (- for stdin)')],
    batch_size: BatchSize = None,
    url: Url = DEFAULT_URL,
    as_json: AsJson = False,
) -> None:
    """The trained model's outputs for the inputs in DATA, one row per sample."""
    x = _rows(_read_json(data), "x", data)
    _, predictions = by_id(
        url, "jobs", job_id, lambda client, whole_id: client.predict(whole_id, x, batch_size=batch_size)
    )
    if as_json:
        _print_json({"predictions": predictions})
        return
    for row in predictions:
        out.print(" ".join(_number(value) for value in row))


def cancel(job_id: JobId, url: Url = DEFAULT_URL, as_json: AsJson = False) -> None:
    """Cancel a job: a queued one never starts, a running one stops once its worker learns of it."""
    job_id, job = by_id(url, "jobs", job_id, lambda client, whole_id: client.cancel(whole_id))
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
        job_id = _full_id(client, "jobs", job_id)
        _finish(_call(lambda: watch_job(client, job_id, err)), as_json)


# --- shared by the commands -----------------------------------------------------

_COLOURS = {"queued": "yellow", "running": "blue", "succeeded": "green", "failed": "red", "cancelled": "magenta"}


_NUMBERS = frozenset({"EPOCH", "LOSS", "VAL_LOSS", "ROWS", "X", "Y", "BYTES", "POINTS", "BEST", "RANK", "VALUE"})
_FREE_TEXT = frozenset({"NAME", "JOBS", "POINT"})
_JOB_CELLS: dict[str, Callable[[Job, Format], str]] = {
    "ID": lambda job, form: short(job.id, form),
    "STATUS": lambda job, form: f"[{_COLOURS[job.status]}]{job.status}[/]",
    "EPOCH": lambda job, form: f"{job.progress.epoch}/{job.progress.epochs}",
    # 3 significant digits: at most 9 characters (-1.23e-05)
    "LOSS": lambda job, form: _number((job.metrics or {}).get("loss"), 3),
    "VAL_LOSS": lambda job, form: _number((job.metrics or {}).get("val_loss"), 3),
    "DEVICE": lambda job, form: job.device,
    "WORKER": lambda job, form: escape(job.worker or ""),
    "CREATED": lambda job, form: job.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S"),
    "NAME": lambda job, form: escape(job.name or ""),
}
# what fits 80 columns: 8 + 9 + 9 + 9 + 9 + 6 characters and six gaps of two leave the name 17
_NARROW_JOB_COLUMNS = [
    (key, _JOB_CELLS[key]) for key in ("ID", "STATUS", "EPOCH", "LOSS", "VAL_LOSS", "DEVICE", "NAME")
]
_JOB_COLUMNS = [
    (key, _JOB_CELLS[key])
    for key in ("ID", "STATUS", "EPOCH", "LOSS", "VAL_LOSS", "DEVICE", "WORKER", "CREATED", "NAME")
]


def _client(url: str) -> TrainqClient:
    return TrainqClient(url)


def show_list(
    url: str,
    form: Format,
    fetch: Callable[[TrainqClient], list[dict[str, Any]]],
    nothing: str,
    headers: Sequence[str],
    row: Callable[[dict[str, Any]], Sequence[str]],
) -> None:
    """A list command's answer: the items as JSON, or `nothing` on stderr when there are
    none, or a table of `headers` with a `row` per item."""
    with _client(url) as client:
        items: list[dict[str, Any]] = _call(lambda: fetch(client))
    if form is Format.json:
        _print_json({"items": items})
        return
    if not items:
        err.print(nothing)
        return
    shown = table(*headers)
    for item in items:
        shown.add_row(*row(item))
    out.print(shown)


def list_command(
    what: str,
    fetch: Callable[[TrainqClient, int], list[dict[str, Any]]],
    headers: Callable[[Format], Sequence[str]],
    row: Callable[[dict[str, Any], Format], Sequence[str]],
) -> Callable[..., None]:
    """The command that lists `what` (datasets, sweeps) with show_list: `fetch` asks for the newest, as many
    as --limit says; a table of `headers`, a `row` per item, each in the Format asked for."""

    @formatted
    def command(limit: Limit = 50, url: Url = DEFAULT_URL, *, form: Format) -> None:
        show_list(
            url,
            form,
            lambda client: fetch(client, limit),
            f"no {what} at {url}",
            headers(form),
            lambda item: row(item, form),
        )

    return command


def by_id(url: str, kind: str, given: str, request: Callable[[TrainqClient, str], Answer]) -> tuple[str, Answer]:
    """One call on the job, sweep or dataset (`kind`: "jobs", "sweeps", "datasets") whose id
    starts with `given`: its whole id and the answer; exit 1 on an error answer."""
    with _client(url) as client:
        whole_id = _full_id(client, kind, given)
        return whole_id, _call(lambda: request(client, whole_id))


def _full_id(client: TrainqClient, kind: str, given: str) -> str:
    """The whole id that `given` starts (jobs, sweeps or datasets); exit 1 if none or several do."""
    return str(_call(lambda: client.full_id(kind, given)))


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
