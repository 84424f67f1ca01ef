"""The embedded default's broker (SQLite, `services.queue.SQLiteBroker`): what is sent is
taken once each, in the order sent, by a connection of its own as by another process's,
from a database in WAL mode, and nothing taken stays behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from queue import Empty

from tests.conftest import sqlite_settings
from trainq.services.placement import SINGLE_PRIORITY, Route
from trainq.services.queue import QUEUE, create_celery, send_job


def take_all(home: Path) -> list[str]:
    """The job ids of every message waiting on the shared queue, taken through a fresh app
    (a connection that has looked up nothing yet), in the order handed out."""
    app = create_celery(sqlite_settings(home))
    taken: list[str] = []
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        while True:
            try:
                payload = channel._get(QUEUE)
            except Empty:
                return taken
            taken.append(payload["headers"]["argsrepr"])


def test_messages_sent_are_taken_once_each_in_send_order_and_none_stays(tmp_path: Path) -> None:
    app = create_celery(sqlite_settings(tmp_path))
    route = Route(QUEUE, SINGLE_PRIORITY)
    for number in range(3):
        send_job(app, f"job-{number}", route)

    first = take_all(tmp_path)
    # the sender's channel has its queue's id from before: what it sends now still arrives
    for number in range(3, 5):
        send_job(app, f"job-{number}", route)
    second = take_all(tmp_path)

    assert first + second == [repr([f"job-{number}"]) for number in range(5)]
    with sqlite3.connect(tmp_path / "broker.db") as broker:
        assert broker.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert broker.execute("SELECT count(*) FROM kombu_message").fetchone() == (0,)
