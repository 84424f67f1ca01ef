"""Engines, sessions and the one place that commits: `session_scope`.

Services take a session and never commit; the API's request dependency and the worker
wrap each unit of work in `session_scope`, which commits on success and rolls back on error.
What must wait for the commit (a broker message a worker acts on, removing a deleted
dataset's bytes) a service hands to `after_commit`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.util import identity_key
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection

from trainq.services.inline_data import json_text
from trainq.services.settings import Settings, get_settings

log = logging.getLogger(__name__)
T = TypeVar("T")

# what a dropped connection or a locked SQLite file raise: the database failed, not the work
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def outage(error: BaseException) -> str:
    """One line of why the database failed, for a log line written while it stays down: the
    driver's first line, without SQLAlchemy's statement and its link to the docs."""
    cause = getattr(error, "orig", None) or error
    return (str(cause).strip().splitlines() or [type(cause).__name__])[0]


# how long a SQLite writer waits for another writer's lock before giving up
SQLITE_BUSY_TIMEOUT_MS = 30_000


def create_engine_for(settings: Settings) -> Engine:
    url = make_url(settings.sqlalchemy_url)
    if url.get_backend_name() != "sqlite":
        # A pool as large as the API's thread pool is busy: past pool_size, each connection
        # given back is closed and the next request opens one anew, a server process forked
        # for every request (PostgreSQL's CPU per tiny job fell from 6.3 to 3.0 ms at 20).
        engine = create_engine(
            url,
            pool_size=settings.database_pool_size,
            max_overflow=settings.database_pool_size,
            json_serializer=json_text,
        )
        event.listen(engine.pool, "checkin", _note_checkin)
        event.listen(engine.pool, "checkout", _ping_if_idle)
        return engine

    make_sqlite_folder(settings.sqlalchemy_url)
    engine = create_engine(url, json_serializer=json_text)

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        # WAL: readers (the API) do not block the writer (a worker) and the other way round
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


# A connection idle in the pool for longer than this is tested (SELECT 1) before use; one
# in use a moment ago is not. pool_pre_ping tests every checkout: a round trip per
# transaction, a fifth of a tiny job's time. A server restarted under a connection in use
# shows as an error on it, which invalidates the whole pool (SQLAlchemy's disconnect
# handling); a restart while the pool sat idle is caught here.
PING_AFTER_IDLE_SECONDS = 1.0
_CHECKED_IN_AT = "trainq.checked_in_at"


def _note_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_CHECKED_IN_AT] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
    checked_in_at = record.info.get(_CHECKED_IN_AT)
    if checked_in_at is None or time.monotonic() - checked_in_at < PING_AFTER_IDLE_SECONDS:
        return  # new, or in use a moment ago
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.close()
        # leave no transaction open: the caller may switch the connection to autocommit
        dbapi_connection.rollback()
    except Exception as error:
        # the pool drops this connection and checks out another (a new one, if need be)
        raise DisconnectionError(f"a pooled connection failed its test: {error}") from error


def make_sqlite_folder(sqlalchemy_url: str) -> None:
    """The embedded default needs no setup: the SQLite file's folder is made on first use."""
    url = make_url(sqlalchemy_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}


def get_engine(settings: Settings | None = None) -> Engine:
    """This process's engine for the settings' database, made once per URL."""
    settings = settings or get_settings()
    url = settings.sqlalchemy_url
    if url not in _engines:
        _engines[url] = create_engine_for(settings)
    return _engines[url]


def session_factory(settings: Settings | None = None) -> sessionmaker[Session]:
    """This process's sessionmaker for the settings' database, made once per URL.

    expire_on_commit=False: objects read in a scope stay readable after it commits
    (the API serialises the job it just stored)."""
    settings = settings or get_settings()
    url = settings.sqlalchemy_url
    if url not in _factories:
        _factories[url] = new_session_factory(settings)
    return _factories[url]


def new_session_factory(settings: Settings, info: Mapping[str, Any] | None = None) -> sessionmaker[Session]:
    """A sessionmaker of its own on the settings' engine, `info` in each session's `Session.info`
    (`services.queue.session_info`: the Celery app its sessions send through)."""
    factory = sessionmaker(get_engine(settings), expire_on_commit=False, info=dict(info or {}))
    event.listen(factory, "after_commit", _run_after_commit)
    event.listen(factory, "after_rollback", _forget_after_commit)
    return factory


_AFTER_COMMIT = "trainq.after_commit"


def after_commit(session: Session, action: Callable[[], None]) -> None:
    """Run `action` once the session's transaction has committed, never if it rolls back.
    It runs inside `commit()`, so before a request's answer; an exception it raises is
    logged, not raised (what it follows is stored for good). Sessions of
    `session_factory` and `new_session_factory` run these."""
    pending_after_commit(session).append(action)


def pending_after_commit(session: Session) -> list[Callable[[], None]]:
    """What waits for the session's commit, in order (`after_commit` appends to it)."""
    actions: list[Callable[[], None]] = session.info.setdefault(_AFTER_COMMIT, [])
    return actions


def _run_after_commit(session: Session) -> None:
    for action in session.info.pop(_AFTER_COMMIT, []):
        try:
            action()
        except Exception:
            log.exception("after commit: %r failed", action)


def _forget_after_commit(session: Session) -> None:
    session.info.pop(_AFTER_COMMIT, None)


def _forget_parent_connections() -> None:
    # A forked child (a Celery prefork worker) must not use, nor close, the sockets its
    # parent's pools hold: drop them without closing and let the child open its own.
    for engine in _engines.values():
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_parent_connections)


def core(session: Session) -> Connection:
    """The session's connection, in its transaction. A statement that needs no ORM objects
    runs there at a third of the CPU: the ORM's execution path (and, for an UPDATE, its
    bulk synchronisation) costs more than the statement on the hot paths of a submit and a
    job's lease. What the session holds of rows changed there is the caller's to expire."""
    return session.connection()


def expire(session: Session, model: type[Any], *row_ids: str) -> None:
    """Forget what the session holds of rows changed by a Core UPDATE: the next read reloads them."""
    for row_id in row_ids:
        held = session.identity_map.get(identity_key(model, row_id))
        if held is not None:
            session.expire(held)


@contextmanager
def autocommit(factory: sessionmaker[Session]) -> Iterator[Connection]:
    """A connection of the factory's engine on which each statement commits on its own. A
    read, or a write of one statement, needs no transaction around it: this saves the BEGIN
    and COMMIT round trips and the session's bookkeeping (an API key's check, every request)."""
    engine: Engine = factory.kw["bind"]
    with engine.connect() as connection:
        yield connection.execution_options(isolation_level="AUTOCOMMIT")


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose transaction commits when the block ends and rolls back if it raises."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def when_reachable(work: Callable[[], T], *, wait_seconds: float, stop: threading.Event) -> T:
    """`work()`, tried again while the database is unreachable: after 0.25 s at first, then
    up to every 2 s, for `wait_seconds` or until `stop` is set; then its last error. Work
    waiting on the database starts within seconds of its return, not at some later sweep."""
    deadline = time.monotonic() + wait_seconds
    pause = 0.25
    while True:
        try:
            return work()
        except DATABASE_UNAVAILABLE as error:
            if time.monotonic() + pause > deadline or stop.wait(0):
                raise
            log.warning("the database is unreachable (%s); trying again in %.2fs", outage(error), pause)
            if stop.wait(pause):
                raise
        pause = min(pause * 2, 2.0)
