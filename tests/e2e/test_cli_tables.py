"""The `trainq` tables in a real 80-column terminal (tmux): `jobs`, `datasets list`, `sweeps`
and `workers` show every cell whole (no ellipsis, the names wrapped rather than cut),
with short ids that any command takes back as a prefix; `--wide` and `-o json` give the
whole ids; `jobs delete` and `datasets delete`; `trainq --help` loads neither the HTTP
client nor pydantic and costs no more than a bare Typer program's --help."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import seed_spec, submit, wait_for_status
from tests.e2e.test_cli import Terminal, ok, trainq
from tests.support.processes import BIN, process_env, wait_for

pytestmark = pytest.mark.e2e

LONG_NAME = "a rather long job name that cannot fit in its column"
TABLES = ["jobs", "datasets list", "sweeps", "workers"]


def test_tables_fit_80_columns_whole_and_short_ids_work_as_prefixes(stack: Stack, tmp_path: Path) -> None:
    assert stack.api is not None
    stack.worker("tables")
    csv_file = tmp_path / "line.csv"
    csv_file.write_text("x,y\n" + "".join(f"{i / 10},{2 * i / 10 + 1}\n" for i in range(20)))
    dataset_id = ok(trainq(stack, "datasets", "upload", str(csv_file), "--name", LONG_NAME, "--no-progress")).strip()
    with stack.client() as client:
        jobs = [submit(client, {**seed_spec(epochs=3), "name": LONG_NAME}), submit(client, seed_spec(epochs=4))]
        base = {key: value for key, value in seed_spec(epochs=2).items() if key != "name"}
        sweep = client.post("/v1/sweeps", json={"base": base, "grid": {"fit.batchSize": [8, 16]}})
        assert sweep.status_code == 201, sweep.text
        sweep_jobs = [entry["job"]["id"] for entry in sweep.json()["jobs"]]
        for job_id in [job["id"] for job in jobs] + sweep_jobs:
            wait_for_status(client, job_id, "succeeded", timeout=60, processes=stack.processes)
        finished = {job["id"]: client.get(f"/v1/jobs/{job['id']}").json() for job in jobs}

    env = {
        k: v
        for k, v in process_env({"TRAINQ_URL": stack.api.base_url, "TERM": "xterm-256color"}).items()
        if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "TRAINQ_URL", "TRAINQ_API_KEY", "TERM")
    }
    script = "; ".join(f"echo '== {table}'; {BIN / 'trainq'} {table}" for table in TABLES)
    terminal = Terminal(tmp_path, ["sh", "-c", script], env, columns=80, rows=60)
    try:
        wait_for(
            lambda: "EXITED 0" in terminal.screen(), timeout=60, what="the tables are printed", state=terminal.screen
        )
        screen = terminal.screen()
    finally:
        terminal.close()

    assert "…" not in screen and "..." not in screen, screen
    sections = dict(re.findall(r"^== (.+)\n((?:(?!== ).*\n)*)", screen, re.MULTILINE))
    assert set(sections) == set(TABLES), screen
    for job_id, job in finished.items():
        cells = [
            job_id[:8],
            "succeeded",
            f"{job['progress']['epoch']}/{job['progress']['epochs']}",
            f"{job['metrics']['loss']:.3g}",
            f"{job['metrics']['val_loss']:.3g}",
            "auto",
        ]
        assert re.search(r"^" + r"\s+".join(map(re.escape, cells)), sections["jobs"], re.MULTILINE), sections["jobs"]
    # the long name wraps inside its column: every word is there, none cut
    assert set(LONG_NAME.split()) <= set(sections["jobs"].split()), sections["jobs"]
    assert re.search(rf"^{dataset_id[:8]}\s+csv\s+20\s+1\s+1\s", sections["datasets list"], re.MULTILINE), sections
    assert set(LONG_NAME.split()) <= set(sections["datasets list"].split())
    assert re.search(rf"^{sweep.json()['id'][:8]}\s+2\s+2/2\s+val_loss \(min\)\s+\S+", sections["sweeps"], re.M)
    assert re.search(r"^online\s+cpu\s+numpy\s", sections["workers"], re.MULTILINE), sections["workers"]

    # a short id is taken back as a prefix; --wide and -o json give the whole ids
    job_id = jobs[0]["id"]
    assert re.search(r"^status\s+succeeded", ok(trainq(stack, "show", job_id[:6])), re.MULTILINE)
    assert job_id in ok(trainq(stack, "jobs", "--wide"))
    assert {item["id"] for item in json.loads(ok(trainq(stack, "jobs", "-o", "json")))["items"]} >= set(finished)
    sweep_table = ok(trainq(stack, "sweep", sweep.json()["id"][:8]))
    assert all(job[:8] in sweep_table for job in sweep_jobs), sweep_table
    assert dataset_id in ok(trainq(stack, "datasets", "show", dataset_id[:8]))
    unknown = trainq(stack, "show", "ffffffffff")
    assert (unknown.returncode, unknown.stderr.strip()) == (1, "trainq: no job id starts with 'ffffffffff'")

    # delete, by prefix: a job that ended, then the dataset no queued job uses
    ok(trainq(stack, "jobs", "delete", job_id[:8]))
    assert trainq(stack, "show", job_id).returncode == 1
    ok(trainq(stack, "datasets", "delete", dataset_id[:8]))
    assert "no datasets" in trainq(stack, "datasets", "list").stderr


def fastest(command: list[str], runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, timeout=60)
        best = min(best, time.perf_counter() - started)
    return best


def test_help_loads_no_client_and_costs_what_a_bare_typer_program_does(tmp_path: Path) -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nsys.argv = ['trainq', '--help']\nfrom trainq.cli.main import app\n"
            "try:\n    app()\nexcept SystemExit:\n    pass\nprint(sorted({m.split('.')[0] for m in sys.modules}))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()[-1]
    for heavy in ("httpx", "pydantic", "pydantic_settings", "sqlalchemy", "numpy", "celery", "prometheus_client"):
        assert f"'{heavy}'" not in loaded, f"trainq --help imports {heavy}"

    bare = tmp_path / "bare.py"
    bare.write_text("import typer\napp = typer.Typer()\n@app.command()\ndef one() -> None:\n    pass\n")
    bare.write_text(bare.read_text() + "@app.command()\ndef two() -> None:\n    pass\napp()\n")
    ours, theirs = fastest([str(BIN / "trainq"), "--help"]), fastest([sys.executable, str(bare), "--help"])
    print(f"trainq --help: {ours:.3f} s; a bare Typer program's --help: {theirs:.3f} s")
    # 0.5 s on an idle machine; on a loaded one, what Python and Typer cost there, and a little
    assert ours < max(0.5, theirs + 0.15), (ours, theirs)
