"""The newcomer's path: the README's curl walk-through, run as written against `trainq up`
on the embedded default, gives answers of the shapes the README shows.

The walk-through is read from README.md itself: every ```bash block of the "Walk-through"
section is run in order (with the README's host and port replaced by the test's, and the
job ids the README shows replaced by the ids of this run); a ```json block right after a
command is the answer the README shows for it. Variables a block sets (`JOB=...`) are
carried to the blocks after it, as they would be in a newcomer's shell.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import REPO, Api, Processes, process_env

pytestmark = pytest.mark.e2e

README = REPO / "README.md"
README_ADDRESS = "http://127.0.0.1:8000"
COMMAND_DEADLINE_SECONDS = 60
# JOB=..., or a file read into a variable: export TRAINQ_API_KEY=$(cat ...)
ASSIGNMENT = re.compile(r"^(?:export )?[A-Z_]+=(?:\S+|\$\(cat \S+\))$", re.MULTILINE)
# where the README's `trainq up` keeps its key
README_KEY_FILE = ".trainq/api-key"


@dataclass
class Step:
    command: str
    answer: Any | None  # the JSON the README shows after the command, if any


def walk_through(text: str) -> list[Step]:
    section = re.search(r"^## Walk-through\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "README.md has no '## Walk-through' section"
    blocks = re.findall(r"^```(\w+)\n(.*?)^```", section.group(1), re.MULTILINE | re.DOTALL)
    steps: list[Step] = []
    for language, body in blocks:
        if language == "bash":
            steps.append(Step(body.strip(), None))
        elif language == "json":
            assert steps and steps[-1].answer is None, "a json block must follow a bash block"
            steps[-1].answer = json.loads(body)
    return steps


def same_shape(shown: Any, got: Any, where: str = "answer") -> None:
    """The same keys at every level, the same kinds of values; null where the README shows a
    value (or the other way round) is a moment in a job's life, not a different shape."""
    if shown is None or got is None:
        return
    if isinstance(shown, dict):
        assert isinstance(got, dict), f"{where}: expected an object, got {got!r}"
        assert set(got) == set(shown), f"{where}: keys {sorted(got)} differ from the README's {sorted(shown)}"
        for key in shown:
            same_shape(shown[key], got[key], f"{where}.{key}")
    elif isinstance(shown, list):
        assert isinstance(got, list), f"{where}: expected a list, got {got!r}"
        if shown and got:
            same_shape(shown[0], got[0], f"{where}[0]")
    elif isinstance(shown, bool) or isinstance(got, bool):
        assert type(got) is type(shown), f"{where}: expected {type(shown).__name__}, got {got!r}"
    elif isinstance(shown, (int, float)):
        assert isinstance(got, (int, float)), f"{where}: expected a number, got {got!r}"
    else:
        assert isinstance(got, type(shown)), f"{where}: expected {type(shown).__name__}, got {got!r}"


@pytest.fixture(scope="module")
def trainq_up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Processes, Path]]:
    folder = tmp_path_factory.mktemp("readme")
    processes = Processes(folder / "logs")
    try:
        yield processes.up({"TRAINQ_HOME": str(folder / "home")}, workers=1), processes, folder / "home"
    finally:
        processes.stop_all()


def test_the_readme_walk_through_gives_the_answers_it_shows(trainq_up: tuple[Api, Processes, Path]) -> None:
    api, processes, home = trainq_up
    steps = walk_through(README.read_text())
    assert any("/evaluate" in step.command for step in steps) and any("/predict" in step.command for step in steps)
    ids: dict[str, str] = {}  # the README's job ids -> this run's
    assignments: list[str] = []
    for step in steps:
        command = step.command.replace(README_ADDRESS, api.base_url).replace(README_KEY_FILE, str(home / "api-key"))
        for shown, actual in ids.items():
            command = command.replace(shown, actual)
        script = "\n".join(["set -euo pipefail", *assignments, command])
        done = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            cwd=REPO,
            # no key but the one the README's commands read from trainq up's file
            env=process_env({"TRAINQ_API_KEY": ""}),
            timeout=COMMAND_DEADLINE_SECONDS,
        )
        assert done.returncode == 0, (
            f"{command}\nexited {done.returncode}:\n{done.stdout}{done.stderr}\n{processes.logs()}"
        )
        assignments += ASSIGNMENT.findall(command)
        if step.answer is None:
            continue
        got = json.loads(done.stdout)
        same_shape(step.answer, got)
        if isinstance(step.answer, dict) and "id" in step.answer:
            ids[step.answer["id"]] = got["id"]
