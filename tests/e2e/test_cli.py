"""The `trainq` client commands against the real stack: each command's output, the JSON
of --json against the API's own answer, errors naming what is wrong, and the progress bar
drawn in a real terminal (tmux), advancing, with Ctrl-C leaving the job running.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Stack
from tests.e2e.jobs import line, long_spec, seed_spec
from tests.support.processes import BIN, process_env, wait_for
from trainq.services.client import TrainqClient

pytestmark = pytest.mark.e2e

COMMAND_DEADLINE_SECONDS = 60
HEARTBEAT = {"TRAINQ_HEARTBEAT_SECONDS": "0.2"}


def trainq(
    stack: Stack, *args: str, url_from_env: bool = False, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`trainq ARGS` pointed at the stack's API by --url (or by TRAINQ_URL)."""
    assert stack.api is not None
    env = process_env({"COLUMNS": "200"} | ({"TRAINQ_URL": stack.api.base_url} if url_from_env else {}))
    url = [] if url_from_env else ["--url", stack.api.base_url]
    return subprocess.run(
        [str(BIN / "trainq"), *args, *url],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=COMMAND_DEADLINE_SECONDS,
    )


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, f"rc {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done.stdout


def write_json(folder: Path, name: str, document: Any) -> str:
    path = folder / name
    path.write_text(json.dumps(document))
    return str(path)


def test_every_command_answers_what_the_api_holds(stack: Stack, tmp_path: Path) -> None:
    assert stack.api is not None
    stack.worker("cli")
    spec = seed_spec(epochs=30)
    submitted = trainq(stack, "submit", write_json(tmp_path, "spec.json", spec), "--watch")
    out = ok(submitted)
    job_id = out.splitlines()[0]
    assert re.fullmatch(r"[0-9a-f-]{36}", job_id), out
    assert f"submitted job {job_id} (y = 2x + 1): queued" in submitted.stderr
    # it ends with the final metrics
    assert re.search(rf"succeeded\s+job {job_id}: 30 of 30 epochs in [0-9.]+ s", out), out
    assert re.search(r"^\s+val_loss\s+[0-9.e-]+\s*$", out, re.MULTILINE), out

    with TrainqClient(stack.api.base_url) as client:
        job = client.job(job_id)
        assert job.status == "succeeded" and job.metrics is not None
        out = ok(trainq(stack, "jobs", url_from_env=True))
        assert re.search(rf"^{job_id[:8]}\s+succeeded\s+30/30\s.*y = 2x \+ 1", out, re.MULTILINE), out
        assert re.search(rf"^{job_id}\s+succeeded\s+30/30\s", ok(trainq(stack, "jobs", "--wide")), re.MULTILINE)
        assert json.loads(ok(trainq(stack, "jobs", "--json")))["items"][0] == client._request(
            "GET", f"/v1/jobs/{job_id}"
        )
        assert ok(trainq(stack, "jobs", "--status", "failed")) == ""

        out = ok(trainq(stack, "show", job_id))
        assert re.search(r"^status\s+succeeded\s*$", out, re.MULTILINE), out
        assert re.search(r"^progress\s+epoch 30 of 30\s*$", out, re.MULTILINE), out
        assert re.search(rf"^loss\s+{job.metrics['loss']:.6g}\s*$", out, re.MULTILINE), out
        assert json.loads(ok(trainq(stack, "show", job_id, "--json"))) == job.raw

        history = client.history(job_id)
        rows = list(csv.reader(io.StringIO(ok(trainq(stack, "history", job_id, "--csv")))))
        assert rows[0] == ["epoch", "loss", "val_loss", "mae", "val_mae", "wallTime"], rows[0]
        assert len(rows) == 31
        keys = rows[0][1:-1]
        for row, epoch in zip(rows[1:], history, strict=True):
            # the CSV keeps every digit: the numbers read back equal the API's
            assert int(row[0]) == epoch.epoch
            assert [float(v) for v in row[1:-1]] == [epoch.logs[k] for k in keys]
        out = ok(trainq(stack, "history", job_id))
        assert len(out.splitlines()) == 31 and "VAL_LOSS" in out.splitlines()[0]
        assert json.loads(ok(trainq(stack, "history", job_id, "--json")))["epochs"][29]["logs"] == history[29].logs

        weights = client.weights(job_id)
        out = ok(trainq(stack, "weights", job_id))
        kernel, bias = weights[0].values[0][0], weights[1].values[0]
        assert re.fullmatch(rf"layer 1 kernel 1x1\n\s+{kernel:.6g}\nlayer 1 bias 1\n\s+{bias:.6g}\n", out), out
        assert json.loads(ok(trainq(stack, "weights", job_id, "--json")))["weights"][0]["values"] == weights[0].values

        x, y = line(6, seed=5)
        data = write_json(tmp_path, "data.json", {"x": x, "y": y})
        expected = client.evaluate(job_id, x, y)
        out = ok(trainq(stack, "evaluate", job_id, data))
        assert out == f"loss {expected.loss:.6g}\nmae {expected.metrics['mae']:.6g}\n"
        assert json.loads(ok(trainq(stack, "evaluate", job_id, data, "--json"))) == {
            "loss": expected.loss,
            "metrics": expected.metrics,
        }

        predictions = client.predict(job_id, x)
        out = ok(trainq(stack, "predict", job_id, "-", stdin=json.dumps({"x": x})))
        assert out.splitlines() == [f"{row[0]:.6g}" for row in predictions]
        assert json.loads(ok(trainq(stack, "predict", job_id, data, "--json"))) == {"predictions": predictions}

        # errors: the API's sentence and the field at fault, exit 1; an unreadable file, exit 2
        refused = trainq(stack, "predict", job_id, "-", stdin='{"x": [[1, 2]]}')
        assert refused.returncode == 1 and refused.stdout == ""
        assert "inputShape" in refused.stderr and refused.stderr.startswith("trainq: x"), refused.stderr
        unknown = trainq(stack, "show", "no-such-job")
        assert (unknown.returncode, unknown.stderr.strip()) == (1, "trainq: no job id starts with 'no-such-job'")
        finished = trainq(stack, "cancel", job_id)
        assert finished.returncode == 1 and "succeeded and cannot be cancelled" in finished.stderr
        broken = trainq(stack, "submit", write_json(tmp_path, "broken.json", {**spec, "compile": {"loss": "nope"}}))
        assert broken.returncode == 1 and "compile" in broken.stderr, broken.stderr
        assert trainq(stack, "submit", str(tmp_path / "missing.json")).returncode == 2

        # cancel: a running job is asked to stop, and does
        long_job = client.submit(long_spec(epochs=100_000))
        wait_for(lambda: client.job(long_job.id).status == "running", timeout=30, what="the long job runs")
        out = ok(trainq(stack, "cancel", long_job.id))
        assert (
            out.strip()
            == f"job {long_job.id} (long): cancel requested; it is running and stops once its worker learns of it"
        )
        wait_for(lambda: client.job(long_job.id).status == "cancelled", timeout=10, what="the long job is cancelled")
        assert json.loads(ok(trainq(stack, "show", long_job.id, "--json")))["status"] == "cancelled"


class Terminal:
    """A tmux session of its own (a private server socket), COLUMNS x ROWS, running one command."""

    def __init__(
        self, folder: Path, command: list[str], env: dict[str, str], columns: int = 120, rows: int = 12
    ) -> None:
        assert shutil.which("tmux"), "tmux is not installed (`make system-packages` installs it)"
        self.socket = str(folder / f"tmux-{uuid.uuid4().hex[:8]}")
        # tmux hands its server's environment to the session: the command's own is set by `env`
        exports = " ".join(f"{key}={_quote(value)}" for key, value in env.items())
        self._tmux(
            "new-session",
            "-d",
            "-x",
            str(columns),
            "-y",
            str(rows),
            "-s",
            "watch",
            f"env {exports} {' '.join(map(_quote, command))}; echo EXITED $?; sleep 600",
        )

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "watch").stdout

    def keys(self, *keys: str) -> None:
        self._tmux("send-keys", "-t", "watch", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=10)

    def _tmux(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=10)
        assert done.returncode == 0, done.stderr
        return done


def _quote(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def test_watch_draws_a_progress_bar_that_advances_and_ctrl_c_leaves_the_job_running(
    stack: Stack, tmp_path: Path
) -> None:
    assert stack.api is not None
    stack.worker("watch", HEARTBEAT)
    with TrainqClient(stack.api.base_url) as client:
        job = client.submit(long_spec(epochs=100_000))
        env = {
            k: v
            for k, v in process_env({"TRAINQ_URL": stack.api.base_url, "TERM": "xterm-256color"}).items()
            if k in ("PATH", "HOME", "LANG", "PYTHONPATH", "TRAINQ_URL", "TRAINQ_API_KEY", "TERM")
        }
        terminal = Terminal(tmp_path, [str(BIN / "trainq"), "watch", job.id], env)
        try:
            bar = re.compile(r"running .* (\d+)/100000 epochs loss [0-9.e-]+")

            def epochs_drawn() -> int | None:
                found = bar.search(terminal.screen())
                return int(found.group(1)) if found and int(found.group(1)) > 0 else None

            first = wait_for(
                epochs_drawn, timeout=30, what="the bar shows a running job's epochs", state=terminal.screen
            )
            later = wait_for(
                lambda: (n := epochs_drawn()) and n > first and n,
                timeout=30,
                what=f"the bar moves past {first} epochs",
                state=terminal.screen,
            )
            assert later > first

            terminal.keys("C-c")

            def exited() -> str | None:
                screen = terminal.screen()
                return screen if "EXITED" in screen else None

            screen = wait_for(exited, timeout=15, what="watch stops on Ctrl-C", state=terminal.screen)
            assert f"stopped watching; job {job.id} goes on" in screen, screen
            assert "EXITED 130" in screen, screen
            # the job is the server's: still running after the watcher left
            still = client.job(job.id)
            assert still.status == "running" and not still.cancel_requested, still
            # the bar moved with the job's event stream, not by polling its history
            requests = [line for line in stack.api.process.log().splitlines() if f"/v1/jobs/{job.id}" in line]
            assert any(f"GET /v1/jobs/{job.id}/events" in line for line in requests), requests
            assert not any("/history" in line for line in requests), requests
        finally:
            terminal.close()
            client.cancel(job.id)
