"""A throwaway PostgreSQL for tests: initdb into a temp folder, a free port on 127.0.0.1.

Started from the binaries under /usr/lib/postgresql/<version>/bin (or on PATH) with
fsync off, its unix socket in its own folder, and trust authentication for the local
superuser. The PostgreSQL already running on 5432, if any, is never touched.

initdb and postgres refuse to run as root: as root, both run as the `postgres` system
user (or `nobody`), who is given the temp folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support.processes import free_port

START_DEADLINE_SECONDS = 30.0
STOP_DEADLINE_SECONDS = 15.0
SUPERUSER = "trainq"


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL is not installed (Debian package postgresql; `make test` installs it)")
    return Path(initdb).parent


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parts[-3]
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user to run as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")


class PostgresServer:
    def __init__(self) -> None:
        self.bin = _binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="trainq-postgres-"))
        self.data = self.folder / "data"
        self.socket_dir = self.folder / "socket"
        self.log_path = self.folder / "postgres.log"
        self.port = free_port()
        self._user = _server_user()
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """The server's process (PostgreSQL's started through `runuser` when root: that one)."""
        assert self._process is not None, "not started"
        return self._process.pid

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> PostgresServer:
        """initdb on the first start; a later start (after `stop`) serves the same data on the same port."""
        if not self.data.exists():
            self._initdb()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                self._as_server_user(
                    [
                        str(self.bin / "postgres"),
                        "-D",
                        str(self.data),
                        "-p",
                        str(self.port),
                        "-c",
                        "listen_addresses=127.0.0.1",
                        "-c",
                        f"unix_socket_directories={self.socket_dir}",
                        # a test database is disposable: durability only costs time
                        "-c",
                        "fsync=off",
                        "-c",
                        "synchronous_commit=off",
                        "-c",
                        "full_page_writes=off",
                        "-c",
                        "max_connections=200",
                    ]
                ),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_until_accepting()
        return self

    def _initdb(self) -> None:
        self.socket_dir.mkdir()
        if self._user is not None:
            for path in (self.folder, self.socket_dir):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)
        initdb = subprocess.run(
            self._as_server_user(
                [
                    str(self.bin / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    SUPERUSER,
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                    "--no-instructions",
                ]
            ),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        if initdb.returncode != 0:
            raise RuntimeError(f"initdb failed ({initdb.returncode}):\n{initdb.stderr.decode(errors='replace')}")

    def create_database(self, name: str, template: str | None = None) -> str:
        """CREATE DATABASE (a copy of `template` if given); its SQLAlchemy URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            # FILE_COPY copies the template's files at once: five times faster than WAL_LOG here
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        with self.connect() as connection:
            connection.execute(statement)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with self.connect() as connection:
            connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database, autocommit=True, connect_timeout=5
        )

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self) -> None:
        """A fast shutdown (SIGINT), then SIGKILL if it lingers."""
        if self._process is None:
            return
        process, self._process = self._process, None
        if process.poll() is None:
            process.send_signal(2)
            try:
                process.wait(STOP_DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_DEADLINE_SECONDS)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    def _as_server_user(self, command: list[str]) -> list[str]:
        if self._user is None:
            return command
        setpriv = shutil.which("setpriv")
        if setpriv is not None:
            return [setpriv, f"--reuid={self._user.pw_uid}", f"--regid={self._user.pw_gid}", "--init-groups", *command]
        return ["runuser", "-u", self._user.pw_name, "--", *command]

    def _wait_until_accepting(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self._process.returncode} on port {self.port}:\n{self._log_tail()}"
                )
            try:
                with self.connect():
                    return
            except psycopg.OperationalError as error:
                last_error = error
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"postgres on port {self.port} did not accept connections within {START_DEADLINE_SECONDS}s "
            f"(last error: {last_error}):\n{self._log_tail()}"
        )

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except FileNotFoundError:
            return "(no log)"
