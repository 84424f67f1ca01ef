"""`trainq fit SPEC.json`: one job spec fitted locally, with no service.

The result is the JSON document the command prints: tf.js's `history.history`, the
final weights as nested lists in `model.getWeights()` order, and the number of epochs
run (fewer than asked when early stopping ends the fit).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from trainq.services.engine import EpochEnd, fit
from trainq.services.spec import JobSpec


def run_fit(spec_path: Path, progress: bool) -> dict[str, Any]:
    """Fit the job in `spec_path`; with `progress`, a bar per epoch on stderr.

    Raises pydantic's ValidationError for a document that is not a job spec, and the
    engine's InvalidConfig / InvalidData / Diverged (each naming its field)."""
    spec = JobSpec.model_validate_json(spec_path.read_bytes())
    config = spec.to_training_config()
    x, y, validation_data = spec.arrays()
    if not progress:
        result = fit(config, x, y, validation_data=validation_data)
    else:
        bar = Progress(
            TextColumn("epoch"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[logs]}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        with bar:
            task = bar.add_task("fit", total=config.fit.epochs - config.fit.initial_epoch, logs="")

            def on_epoch_end(end: EpochEnd) -> None:
                logs = "  ".join(f"{key} {value:.4g}" for key, value in end.logs.items())
                bar.update(task, advance=1, logs=logs)

            result = fit(config, x, y, validation_data=validation_data, on_epoch_end=on_epoch_end)
    return {
        "history": result.history,
        "weights": [weight.tolist() for weight in result.weights],
        "epochs": len(result.epochs),
    }
