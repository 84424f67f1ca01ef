"""A throwaway Redis server for tests: its own free port on 127.0.0.1, its own temp folder.

Started from the `redis-server` binary on the machine with persistence off, so that a
restart comes back empty: that is how the tests lose the broker's messages on purpose.
The Redis already running on 6379, if any, is never touched.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from tests.support.processes import free_port

START_DEADLINE_SECONDS = 10.0
STOP_DEADLINE_SECONDS = 10.0


class RedisServer:
    def __init__(self, folder: Path | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (Debian package redis-server; `make test` installs it)")
        self.binary = binary
        self.folder = folder or Path(tempfile.mkdtemp(prefix="trainq-redis-"))
        self.port = free_port()
        self.log_path = self.folder / "redis.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._owns_folder = folder is None

    @property
    def pid(self) -> int:
        assert self._process is not None, "not started"
        return self._process.pid

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.folder),
            "--daemonize",
            "no",
            "--logfile",
            str(self.log_path),
        ]
        self._process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        self._wait_for_ping()
        return self

    def stop(self) -> None:
        """SIGTERM (with saving off, nothing is written), then wait; kill it if it lingers."""
        if self._process is None:
            return
        process, self._process = self._process, None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_DEADLINE_SECONDS)

    def restart_empty(self) -> None:
        """Stop and start again on the same port: nothing is persisted, so every key is gone."""
        self.stop()
        self.start()

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=5)

    def close(self) -> None:
        self.stop()
        if self._owns_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def _wait_for_ping(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self._process.returncode} on port {self.port}:\n{self._log_tail()}"
                )
            try:
                if self.client().ping():
                    return
            except redis.ConnectionError as error:
                last_error = error
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(
            f"redis-server on port {self.port} did not answer PING within {START_DEADLINE_SECONDS}s "
            f"(last error: {last_error}):\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return "(no log)"
