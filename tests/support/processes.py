"""Real trainq processes for end-to-end tests: the API, Celery workers, `trainq up`.

Each process runs in its own process group (so a Celery worker's pool children die
with it), writes stdout and stderr to a log file, and is stopped with a deadline:
SIGTERM, then SIGKILL. `wait_for` polls a condition until a deadline and, when it
fails, shows the last state it saw and the tail of every process's log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx

from tests.support.keys import TEST_KEY

T = TypeVar("T")

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
STOP_DEADLINE_SECONDS = 15.0
LOG_TAIL_CHARS = 6000

# Variables the parent's environment must not leak into a process started for a test:
# each test says where its database and broker are.
_CONFIG_VARIABLES = ("DATABASE_URL", "REDIS_URL")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_env(env: Mapping[str, str]) -> dict[str, str]:
    """The test runner's environment without trainq's configuration, plus `env`; the
    test session's API key, for the command line (`env` may set another, or "" for none)."""
    base = {k: v for k, v in os.environ.items() if k not in _CONFIG_VARIABLES and not k.startswith("TRAINQ_")}
    base["PYTHONUNBUFFERED"] = "1"
    base["TRAINQ_API_KEY"] = TEST_KEY
    base.update(env)
    return base


@dataclass
class Process:
    name: str
    command: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid

    def running(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, chars: int = LOG_TAIL_CHARS) -> str:
        return self.log()[-chars:]

    def kill(self, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal the whole process group: a Celery worker and its pool child alike."""
        try:
            os.killpg(self.popen.pid, sig)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        """SIGTERM to the leader alone: a Celery worker then shuts its own pool down."""
        if self.running():
            self.popen.terminate()

    def stop(self) -> None:
        self.terminate()
        self.reap()

    def reap(self) -> None:
        """Wait for the leader (SIGKILL past the deadline), then kill what is left of its
        group (pool children orphaned by a leader that died first)."""
        try:
            self.popen.wait(STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            pass
        self.kill(signal.SIGKILL)
        try:
            self.popen.wait(STOP_DEADLINE_SECONDS)
        except subprocess.TimeoutExpired:
            pass

    def describe(self) -> str:
        state = "running" if self.running() else f"exited with {self.popen.returncode}"
        return (
            f"--- {self.name} (pid {self.pid}, {state}): {' '.join(self.command)}\n"
            f"--- log {self.log_path}, last {LOG_TAIL_CHARS} characters:\n{self.log_tail()}"
        )


@dataclass
class Processes:
    """Every process a test (or fixture) started; `stop_all` at teardown."""

    folder: Path
    started: list[Process] = field(default_factory=list)

    def start(self, name: str, command: list[str], env: Mapping[str, str], cwd: Path = REPO) -> Process:
        self.folder.mkdir(parents=True, exist_ok=True)
        log_path = self.folder / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                command,
                cwd=cwd,
                env=process_env(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, command, log_path, popen)
        self.started.append(process)
        return process

    def stop_all(self) -> None:
        stop(reversed(self.started))

    def logs(self) -> str:
        return "\n".join(process.describe() for process in self.started)

    # --- trainq's own processes -------------------------------------------------

    def trainq(self, name: str, args: list[str], env: Mapping[str, str]) -> Process:
        return self.start(name, [str(BIN / "trainq"), *args], env)

    def api(self, env: Mapping[str, str], port: int | None = None, name: str = "api") -> Api:
        """`trainq api`: the API alone."""
        port = port or free_port()
        process = self.trainq(name, ["api", "--host", "127.0.0.1", "--port", str(port)], env)
        api = Api(process, f"http://127.0.0.1:{port}")
        api.wait_ready(self)
        return api

    def worker(self, env: Mapping[str, str], name: str) -> Process:
        """`trainq worker`: a Celery worker with one pool process and the node name `name@e2e`."""
        return self.trainq(name, ["worker", "--concurrency", "1", "--hostname", f"{name}@e2e"], env)

    def up(self, env: Mapping[str, str], port: int | None = None, workers: int = 1, name: str = "up") -> Api:
        """`trainq up`: its client sends the admin key it saved in TRAINQ_HOME."""
        port = port or free_port()
        process = self.trainq(name, ["up", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)], env)
        api = Api(process, f"http://127.0.0.1:{port}")
        api.wait_ready(self, timeout=90)
        api.key = (Path(env["TRAINQ_HOME"]) / "api-key").read_text().strip()
        return api


@dataclass
class Api:
    process: Process
    base_url: str
    key: str = TEST_KEY  # what `client()` sends

    def client(self, timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=timeout, headers={"Authorization": f"Bearer {self.key}"})

    def wait_ready(self, processes: Processes, timeout: float = 60.0) -> None:
        """Until /healthz answers 200: the process serves HTTP. (Whether its database and
        broker are reachable, /readyz, is for the tests to check.)"""

        def ready() -> str | None:
            if not self.process.running():
                raise ProcessExited(f"{self.process.name} exited before it was ready")
            try:
                response = httpx.get(f"{self.base_url}/healthz", timeout=2)
            except httpx.HTTPError:
                return None
            return "up" if response.status_code == 200 else None

        wait_for(
            ready,
            timeout=timeout,
            what=f"{self.process.name} at {self.base_url}/healthz answers 200",
            processes=processes,
        )


def stop(processes: Iterable[Process]) -> None:
    """Stop processes together: all are told first, then each is waited for."""
    processes = list(processes)
    for process in processes:
        process.terminate()
    for process in processes:
        process.reap()


class ProcessExited(AssertionError):
    pass


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    processes: Processes | None = None,
    state: Callable[[], object] | None = None,
    interval: float = 0.05,
) -> T:
    """Poll `condition` until it returns something truthy (returned) or `timeout` passes.

    On timeout, fail with `what`, the last value of `state()` (or of the condition),
    and the logs of every process started so far."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        value = condition()
        if value:
            return value
        last = value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if state is not None:
        try:
            last = state()
        except Exception as error:  # the report must not hide the timeout behind another error
            last = f"(state() raised {error!r})"
    logs = processes.logs() if processes is not None else "(no processes)"
    raise AssertionError(f"timed out after {timeout}s waiting until {what}; last state: {last!r}\n{logs}")
