"""Following a job in the terminal: a rich progress bar that moves one step per finished
epoch with the latest loss beside it, then the final metrics. The epochs come from the
job's event stream as they are recorded (no polling).

Ctrl-C stops the watching only: the job is the server's and goes on.
"""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainq.services.client import Job, TrainqClient

# the logs shown beside the bar, when the job has them; the final summary shows them all
BAR_LOGS = ("loss", "val_loss")


def watch_job(client: TrainqClient, job_id: str, console: Console) -> Job | None:
    """Show the job's progress on `console` until it finishes and return it; None if Ctrl-C
    stopped the watching."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TextColumn("{task.fields[logs]}"),
        TimeElapsedColumn(),
        console=console,
    )
    job: Job | None = None
    try:
        with bar:
            task = bar.add_task("queued", total=None, logs="")
            for job, epochs in client.watch(job_id):
                logs = epochs[-1].logs if epochs else (job.metrics or {})
                bar.update(
                    task,
                    description=job.status,
                    total=job.progress.epochs,
                    completed=job.progress.epoch,
                    logs="  ".join(f"{key} {logs[key]:.4g}" for key in BAR_LOGS if logs.get(key) is not None),
                )
    except KeyboardInterrupt:
        state = f" (last seen {job.status}, epoch {job.progress.epoch} of {job.progress.epochs})" if job else ""
        console.print(f"stopped watching; job {job_id} goes on{state}. `trainq watch {job_id}` follows it again.")
        return None
    assert job is not None and job.finished
    return job


def summary(job: Job) -> Table:
    """A finished job's status, epochs, duration, final metrics and error."""
    colour = {"succeeded": "green", "failed": "red", "cancelled": "magenta"}[job.status]
    duration = f" in {job.duration:.1f} s" if job.duration is not None else ""
    table = Table.grid(padding=(0, 2))
    table.add_row(
        f"[bold {colour}]{job.status}[/]",
        f"job {job.id}: {job.progress.epoch} of {job.progress.epochs} epochs{duration}",
    )
    for key, value in (job.metrics or {}).items():
        table.add_row(f"  {key}", "" if value is None else f"{value:.6g}")
    if job.error:
        table.add_row("  error", escape(job.error))
    return table
