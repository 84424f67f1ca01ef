"""TensorFlow.js in and out: `trainq export JOB --out DIR` writes the job's model.json and
weights.bin for `tf.loadLayersModel`; `trainq models import DIR/model.json` stores what
tf.js's `model.save` wrote, to start jobs from (`"model": {"from": "<modelId>"}`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from trainq.cli.jobs import JobId, Url, _call, _client, _full_id
from trainq.services.client import DEFAULT_URL, StoredModel

app = typer.Typer(no_args_is_help=True, help="Models kept to start jobs from: import what tf.js saved, list, delete.")
ModelId = Annotated[str, typer.Argument(help="The model's id, as `trainq models import` or `list` shows it")]
Name = Annotated[str | None, typer.Option(help="A label for the model")]
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)


def export(
    job: JobId,
    out_dir: Annotated[Path, typer.Option("--out", help="The folder to write model.json and weights.bin into")],
    url: Url = DEFAULT_URL,
) -> None:
    """Write JOB's model as tf.js loads it (model.json, weights.bin): its final weights, or
    the last checkpoint of a job that is running, cancelled or failed."""
    with _client(url) as client:
        written = _call(lambda: client.export(_full_id(client, "jobs", job), out_dir))
    err.print(f"wrote {written.model_json} and {written.weights_bin} (epoch {written.epoch})", markup=False)
    err.print("serve the folder over HTTP and tf.loadLayersModel('<url>/model.json') loads it", markup=False)


@app.command("import")
def import_(
    model_json: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="model.json as tf.js saved it, its weights beside it")
    ],
    name: Name = None,
    url: Url = DEFAULT_URL,
) -> None:
    """Store a model tf.js saved (model.json and the weight files it names); print its id."""
    with _client(url) as client:
        model = _call(lambda: client.import_model(model_json, name=name))
    err.print(f"stored model {model.id}: {_described(model)}", markup=False)
    out.print(model.id)


@app.command()
def save(job: JobId, name: Name = None, url: Url = DEFAULT_URL) -> None:
    """Keep JOB's model to start other jobs from; print its id."""
    with _client(url) as client:
        model = _call(lambda: client.save_model(_full_id(client, "jobs", job), name=name))
    out.print(model.id)


@app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer")] = False,
    url: Url = DEFAULT_URL,
) -> None:
    """List stored models, newest first."""
    with _client(url) as client:
        models, _ = _call(lambda: client.models(limit=200))
    if as_json:
        sys.stdout.write(json.dumps([model.id for model in models]) + "\n")
        return
    table = Table(box=None, header_style="bold")
    table.add_column("id", no_wrap=True)
    for header in ("name", "layers", "weights", "from job"):
        table.add_column(header)
    for model in models:
        table.add_row(
            model.id, escape(model.name or ""), _described(model), str(model.parameters), model.source_job_id or ""
        )
    out.print(table)


@app.command()
def delete(model: ModelId, url: Url = DEFAULT_URL) -> None:
    """Delete a stored model (jobs started from it keep their copy)."""
    with _client(url) as client:
        _call(lambda: client.delete_model(model))
    err.print(f"deleted model {model}")


def _described(model: StoredModel) -> str:
    units = " → ".join(f"{layer['units']} {layer.get('activation', 'linear')}" for layer in model.layers)
    return f"Dense {units}" + ("" if model.compile else " (uncompiled)")
