"""The `trainq` command: fit a spec locally, migrate the database, manage API keys, run the API, the
workers, or all of them at once (`trainq up`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from trainq.cli import jobs as job_commands
from trainq.cli import sweeps as sweep_commands
from trainq.cli.datasets import app as datasets_app
from trainq.cli.keys import app as keys_app
from trainq.cli.keys import ensure_local_key, tenants_app
from trainq.cli.models import app as models_app
from trainq.cli.models import export

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="trainq: train TensorFlow.js-style Dense models as jobs on Celery workers.",
)
db_app = typer.Typer(no_args_is_help=True, help="Apply the Alembic migrations to the database.")
app.add_typer(db_app, name="db")
app.add_typer(datasets_app, name="datasets")
app.add_typer(models_app, name="models")
app.add_typer(keys_app, name="keys")
app.add_typer(tenants_app, name="tenants")
# submit, jobs, show, history, weights, evaluate, predict, cancel, watch: over HTTP
job_commands.register(app)
# sweeps, sweep, workers
sweep_commands.register(app)
# TensorFlow.js out: the job's model.json and weights.bin
app.command()(export)

# `trainq up` gives its children this long to stop after SIGTERM (a worker finishes its
# current batch of work), then kills them; a job they were running is taken over later
STOP_DEADLINE_SECONDS = 10.0
READY_DEADLINE_SECONDS = 60.0


@app.callback()
def main() -> None:
    # the embedded default keeps its SQLite files here; harmless when DATABASE_URL/REDIS_URL are set
    from trainq.services.settings import get_settings

    get_settings().home.mkdir(parents=True, exist_ok=True)


@app.command()
def fit(
    spec: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="A job spec JSON file")],
    progress: Annotated[bool, typer.Option(help="A progress bar per epoch on stderr")] = True,
) -> None:
    """Train the job in SPEC here, without the service; print the history and weights as JSON."""
    from pydantic import ValidationError

    from trainq.cli.fit import run_fit
    from trainq.services.engine import EngineError

    try:
        result = run_fit(spec, progress)
    except ValidationError as error:
        for item in error.errors():
            field = ".".join(str(part) for part in item["loc"]) or "spec"
            typer.echo(f"{spec}: {field}: {item['msg']}", err=True)
        raise typer.Exit(2) from None
    except EngineError as error:
        typer.echo(f"{spec}: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result))


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Migrate the database up to REVISION (default: the latest)."""
    from trainq.services.db import migrate
    from trainq.services.settings import get_settings

    settings = get_settings()
    migrate.upgrade(settings, revision)
    typer.echo(f"{_redacted(settings.sqlalchemy_url)}: upgraded to {revision}")


@db_app.command("downgrade")
def db_downgrade(revision: Annotated[str, typer.Argument(help="Target revision, e.g. base or -1")]) -> None:
    """Migrate the database down to REVISION."""
    from trainq.services.db import migrate
    from trainq.services.settings import get_settings

    settings = get_settings()
    migrate.downgrade(settings, revision)
    typer.echo(f"{_redacted(settings.sqlalchemy_url)}: downgraded to {revision}")


@app.command()
def api(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
) -> None:
    """Run the HTTP API alone."""
    import uvicorn

    from trainq.services.settings import get_settings

    if get_settings().log_format == "json":
        from trainq.services.log_format import log_as_json

        # uvicorn's own loggers then hand their records to the root's JSON handler
        log_as_json()
        uvicorn.run("trainq.api.app:create_app", factory=True, host=host, port=port, log_config=None)
    else:
        uvicorn.run("trainq.api.app:create_app", factory=True, host=host, port=port)


class DeviceKind(StrEnum):
    cpu = "cpu"
    gpu = "gpu"


class ArrayLibrary(StrEnum):
    numpy = "numpy"
    torch = "torch"
    cupy = "cupy"


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Jobs trained at once (default: the CPUs)")] = None,
    queues: Annotated[str | None, typer.Option(help="Comma-separated queues to take jobs from")] = None,
    hostname: Annotated[str | None, typer.Option(help="Celery node name, e.g. w1@%h")] = None,
    loglevel: Annotated[str, typer.Option(help="Celery's log level")] = "INFO",
    device: Annotated[
        DeviceKind | None,
        typer.Option(
            help="The device kind to serve (TRAINQ_WORKER_DEVICE; default: a CUDA GPU if one is seen, else cpu)",
        ),
    ] = None,
    array_library: Annotated[
        ArrayLibrary | None,
        typer.Option(
            help="The engine's array library (TRAINQ_ARRAY_LIBRARY; default: numpy on cpu, cupy or torch on gpu)",
        ),
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Serve Prometheus /metrics on this port (TRAINQ_WORKER_METRICS_PORT)"),
    ] = None,
) -> None:
    """Run a Celery worker alone: it finds its device, records itself in the workers registry
    and takes jobs from its device kind's queue and the shared one (unless --queues says otherwise)."""
    from trainq.services.settings import get_settings
    from trainq.worker.metrics import use_metrics_folder

    settings = get_settings()
    if metrics_port is not None:
        settings = settings.model_copy(update={"worker_metrics_port": metrics_port})
    if settings.worker_metrics_port is not None:
        # before anything imports prometheus-client: the pool's processes count into this folder
        use_metrics_folder(settings)

    from trainq.services.errors import InvalidInput
    from trainq.services.placement import queues_served
    from trainq.worker.app import app as celery

    overrides = {"worker_device": device, "array_library": array_library}
    celery.settings = settings.model_copy(
        update={name: value.value for name, value in overrides.items() if value is not None}
    )
    try:
        found = celery.device
    except InvalidInput as error:
        typer.echo(f"trainq worker: {error}", err=True)
        raise typer.Exit(2) from None
    _quiet_root_warning()
    argv = ["worker", f"--loglevel={loglevel}", f"--queues={queues or ','.join(queues_served(found.kind))}"]
    if concurrency is not None:
        argv.append(f"--concurrency={concurrency}")
    if settings.log_format == "json":
        # no start-up banner (celery's global --quiet, before the sub-command): every line a JSON object
        argv.insert(0, "--quiet")
    if hostname:
        argv.append(f"--hostname={hostname}")
    celery.worker_main(argv)


@app.command()
def up(
    host: Annotated[str, typer.Option(help="Interface the API listens on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API listens on")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes, each training one job at a time")] = 1,
) -> None:
    """Migrate the database, then run the API and WORKERS workers until Ctrl-C.

    With nothing configured: a SQLite database and a SQLite broker under TRAINQ_HOME
    (./.trainq). With DATABASE_URL and REDIS_URL set: PostgreSQL and Redis."""
    from trainq.services.db import migrate
    from trainq.services.queue import broker_reachable, create_celery
    from trainq.services.settings import get_settings

    settings = get_settings()
    migrate.upgrade(settings)
    key = ensure_local_key(settings)
    # the first connection to the SQLite broker creates its tables: once, here, before
    # several processes race to
    broker_reachable(create_celery(settings), timeout=10)

    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    me = [sys.executable, "-m", "trainq.cli.main"]
    metrics_port = settings.worker_metrics_port
    commands = [[*me, "api", "--host", host, "--port", str(port)]] + [
        [*me, "worker", "--concurrency", "1", "--hostname", f"trainq-{i}@%h"]
        # each worker serves its metrics on a port of its own: TRAINQ_WORKER_METRICS_PORT, the next one, ...
        + (["--metrics-port", str(metrics_port + i - 1)] if metrics_port is not None else [])
        for i in range(1, workers + 1)
    ]
    # each child leads its own process group: Ctrl-C reaches only this process, which stops
    # the children in order, and a worker's pool process is stopped with its worker
    children = [
        subprocess.Popen(command, process_group=0, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for command in commands
    ]
    # each line a child writes comes out prefixed with its name, as docker compose does
    names = ["api", *(f"worker-{i}" for i in range(1, workers + 1))]
    width = max(map(len, names))
    relays = [
        threading.Thread(target=_relay, args=(child, f"{name:<{width}} | "), name=f"trainq-up-{name}", daemon=True)
        for name, child in zip(names, children, strict=True)
    ]
    for relay in relays:
        relay.start()
    try:
        url = f"http://{host}:{port}"
        if _wait_ready(url, children, stopping):
            # the key in the fragment: a browser sends no fragment to the server, so it
            # reaches no log; the page keeps it for its tab
            typer.echo(
                f"trainq is up: dashboard at {url}/#key={key}\n"
                f"API at {url} (docs at {url}/docs), its admin key in {settings.key_file}; {workers} worker(s); "
                f"database {_redacted(settings.sqlalchemy_url)}, broker {_redacted(settings.broker_url)}. "
                "Ctrl-C stops it."
            )
        while not stopping.wait(0.5):
            for command, child in zip(commands, children, strict=True):
                if child.poll() is not None:
                    typer.echo(f"trainq: the {command[3]} process exited with {child.returncode}; stopping", err=True)
                    raise typer.Exit(1)
    finally:
        _stop(children)
        for relay in relays:
            relay.join(timeout=2)


def _relay(child: subprocess.Popen[bytes], prefix: str) -> None:
    """Copy the child's output to ours line by line, each line led by `prefix`."""
    assert child.stdout is not None
    lead = prefix.encode()
    for line in iter(child.stdout.readline, b""):
        sys.stdout.buffer.write(lead + line)
        sys.stdout.buffer.flush()


def _quiet_root_warning() -> None:
    """Celery warns a worker run as root (a container's default user, `make up` as root)
    because a root worker that accepted pickle would run whatever code a message carried.
    trainq's workers accept JSON only (services/queue.py: accept_content=["json"]) and
    messages carry job ids alone, so the warning says nothing true here. (The image runs
    its workers as the user trainq anyway.)"""
    import warnings

    from celery.exceptions import SecurityWarning

    warnings.filterwarnings("ignore", category=SecurityWarning, message="You're running the worker with superuser")


def _wait_ready(url: str, children: list[subprocess.Popen[bytes]], stopping: threading.Event) -> bool:
    import httpx

    deadline = time.monotonic() + READY_DEADLINE_SECONDS
    while time.monotonic() < deadline and not stopping.is_set():
        if any(child.poll() is not None for child in children):
            return False
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        stopping.wait(0.1)
    return False


def _stop(children: list[subprocess.Popen[bytes]]) -> None:
    for child in children:
        # the leader alone: a Celery worker stops its own pool (signalled too, the pool's
        # processes would die mid-task and be reported as lost)
        child.terminate()
    deadline = time.monotonic() + STOP_DEADLINE_SECONDS
    for child in children:
        try:
            child.wait(max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            pass
    for child in children:
        # whatever is left of each group, a worker's pool process included
        _signal_group(child, signal.SIGKILL)
        child.wait()


def _signal_group(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass


def _redacted(url: str) -> str:
    from sqlalchemy.engine import make_url

    scheme, _, rest = url.partition("+") if url.startswith("sqla+") else ("", "", url)
    try:
        shown = make_url(rest).render_as_string(hide_password=True)
    except Exception:
        shown = rest.split("@")[-1]
    return f"{scheme}+{shown}" if scheme else shown


if __name__ == "__main__":
    app()
