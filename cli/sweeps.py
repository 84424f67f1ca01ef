"""`trainq sweeps`, `trainq sweep ID` and `trainq workers`: the cluster's sweeps and
workers, read over HTTP, in tables that fit 80 columns (`--wide` or `-o json` for all)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from trainq.cli.jobs import (
    _COLOURS,
    DEFAULT_URL,
    Format,
    Url,
    _number,
    _print_json,
    by_id,
    err,
    formatted,
    list_command,
    out,
    short,
    show_list,
    table,
)

SweepId = Annotated[str, typer.Argument(help="The sweep's id, or any unique start of it (`trainq sweeps` shows 8)")]


def register(app: typer.Typer) -> None:
    app.command("sweeps", help="List sweeps, newest first: their jobs by status and the best value of their metric.")(
        list_command("sweeps", lambda client, limit: client.sweeps(limit=limit), lambda _: _SWEEP_HEADERS, _sweep_row)
    )
    for command in (sweep, workers):
        app.command()(command)


# the same in every Format
_SWEEP_HEADERS = ("ID", "POINTS", "DONE", "METRIC", "BEST", "NAME")


def _sweep_row(item: dict[str, Any], form: Format) -> tuple[str, ...]:
    counts: dict[str, int] = item["counts"]
    ended = sum(counts.get(status, 0) for status in ("succeeded", "failed", "cancelled"))
    best = item.get("best") or {}
    return (
        short(item["id"], form),
        str(item["points"]),
        f"{ended}/{sum(counts.values())}",
        f"{item['metric']} ({item['goal']})",
        _number(best.get("value"), 4),
        escape(item["name"] or ""),
    )


@formatted
def sweep(sweep_id: SweepId, url: Url = DEFAULT_URL, *, form: Format) -> None:
    """A sweep's jobs, ranked best first by its metric."""
    _, found = by_id(url, "sweeps", sweep_id, lambda client, whole_id: client.sweep(whole_id))
    if form is Format.json:
        _print_json(found)
        return
    err.print(f"sweep {found['id']}: {escape(found['name'] or '')} ranked by {found['metric']} ({found['goal']})")
    shown = table("RANK", "JOB", "STATUS", "VALUE", "POINT")
    for entry in found["jobs"]:
        job = entry["job"]
        point = ", ".join(f"{path}={value}" for path, value in entry["point"].items())
        shown.add_row(
            str(entry["rank"] or ""),
            short(job["id"], form),
            f"[{_COLOURS[job['status']]}]{job['status']}[/]",
            _number(entry["value"], 4),
            escape(point),
        )
    out.print(shown)


@formatted
def workers(url: Url = DEFAULT_URL, *, form: Format) -> None:
    """The workers: online, lost or stopped, their device and the jobs they run."""
    show_list(
        url,
        form,
        lambda client: client.workers(),
        f"no workers have registered at {url}",
        ("STATUS", "DEVICE", "LIBRARY", "JOBS", "NAME"),
        lambda item: (
            item["status"],
            item["deviceKind"] if form is Format.table else f"{item['deviceKind']} ({escape(item['deviceName'])})",
            item["arrayLibrary"],
            " ".join(short(job_id, form) for job_id in item["currentJobs"]),
            escape(item["name"]),
        ),
    )
