"""The real TensorFlow.js for the parity tests: @tensorflow/tfjs 4.22.0 (pure JS 'cpu'
backend, no native binary) installed into tests/parity/node_modules from the lock file,
and `run_tfjs`, which hands job specs to `tfjs_fit.mjs` in one node process."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

PARITY = Path(__file__).resolve().parent
PROGRAM = PARITY / "tfjs_fit.mjs"
MODELS_PROGRAM = PARITY / "tfjs_models.mjs"
TFJS_PACKAGE = PARITY / "node_modules" / "@tensorflow" / "tfjs" / "package.json"
TFJS_VERSION = "4.22.0"
INSTALL_TIMEOUT_S = 300
RUN_TIMEOUT_S = 120


@pytest.fixture(scope="session")
def tfjs() -> None:
    """node_modules holding tf.js 4.22.0, installed by `npm ci` when missing.

    Skips only when node or npm is absent; a failed install fails the tests."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed: the tf.js parity tests need node and npm (make system-packages)")
    if not TFJS_PACKAGE.exists():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=PARITY,
            check=True,
            timeout=INSTALL_TIMEOUT_S,
        )
    installed = json.loads(TFJS_PACKAGE.read_text())["version"]
    assert installed == TFJS_VERSION, f"tests/parity/node_modules holds tf.js {installed}, not {TFJS_VERSION}"


def run_tfjs(document: dict[str, Any], program: Path = PROGRAM) -> dict[str, Any]:
    """What `tfjs_fit.mjs` answers to `document` ({"cases": [...]} or {"bench": {...}}),
    or another program of this folder (`tfjs_models.mjs`)."""
    completed = subprocess.run(
        ["node", str(program)],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        cwd=PARITY,
        timeout=RUN_TIMEOUT_S,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{program.name} exited with {completed.returncode}:\n{completed.stderr}")
    return json.loads(completed.stdout)
