"""The broker, as the API and the workers share it: a Celery app that carries job and
evaluation ids as JSON, and nothing else.

Results live in trainq's database, so Celery stores none. Messages are acknowledged
after the task ran (acks_late), one at a time per process (prefetch 1): a worker that
dies mid-job leaves its message to the broker, and the lease in the database decides
who runs it. Tasks are sent by name (`send_task`), so the sender imports no task code.

A service records what to send with `send_after_commit`; it goes out when the session's
transaction commits (a worker must find the row its message names), and not at all if it
rolls back. A failed send is logged and left to the workers' requeue sweep.

With `REDIS_URL` unset, the broker is Celery's SQLAlchemy transport on a SQLite file.
Its consumers take a message inside `BEGIN IMMEDIATE` (a write lock on the file), so
several worker processes never take the same one; the lock wait is raised from
SQLite's 5 seconds so that a busy moment makes a consumer wait rather than fail.

Importing this module does nothing: the transport alias is registered, and the app
built, by `create_celery`.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from json import dumps, loads
from queue import Empty
from typing import Any

from celery import Celery
from kombu import Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Channel as SQLAlchemyChannel
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport
from kombu.utils.encoding import bytes_to_str
from sqlalchemy import Engine, event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from trainq.services.db.session import after_commit, pending_after_commit
from trainq.services.placement import SHARED_QUEUE, SINGLE_PRIORITY, Route
from trainq.services.settings import Settings

log = logging.getLogger(__name__)

RUN_JOB = "trainq.run_job"
RUN_EVALUATION = "trainq.run_evaluation"
# the queue every worker consumes (jobs with device auto, evaluations); see services.placement
QUEUE = SHARED_QUEUE
# Redis hands an unacknowledged message to another consumer after this long. A job may
# train for hours, and a dead worker's job is found by its expired lease (the requeue
# sweep), not by redelivery, so this only needs to outlast the longest job.
VISIBILITY_TIMEOUT_SECONDS = 7 * 24 * 3600
SQLITE_LOCK_WAIT_SECONDS = 60
# the key of Session.info under which a session carries its Celery app (`session_info`)
_CELERY = "trainq.celery"


class SQLiteChannel(SQLAlchemyChannel):
    """The transport's channel, changed where a broker of one machine pays for it:
    - a message taken is deleted: kombu marks it invisible and keeps the row forever, so
      broker.db would grow by a row for every message ever sent (the transport has no
      acknowledgements: a message is gone once taken either way);
    - a send is one INSERT, on a queue id looked up once, in a WAL database
      (`_broker_pragmas`): kombu's ORM send cost 5.7-7.4 ms, these 1.2 ms, and a batch of
      1,000 jobs on the embedded default took 6.6-7.7 s to submit, now 2.4-2.5 s."""

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._queue_ids: dict[str, int] = {}

    def _queue_id(self, queue: str) -> int:
        # a queue's row is never deleted (the transport has no call that would), so its id,
        # once found, stays right; kombu looks it up again for every message sent or polled
        found = self._queue_ids.get(queue)
        if found is None:
            found = self._queue_ids[queue] = int(self._get_or_create(queue).id)
        return found

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        # `timeout` is in kombu's abstract signature only: this channel is polled, never blocks
        queue_id = self._queue_id(queue)
        self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            message = (
                self.session.query(self.message_cls)
                .filter(self.message_cls.queue_id == queue_id, self.message_cls.visible.is_not(False))
                .order_by(self.message_cls.sent_at, self.message_cls.id)
                .first()
            )
            if message is None:
                raise Empty()
            self.session.delete(message)
            return loads(bytes_to_str(message.payload))
        finally:
            self.session.commit()

    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]  # kombu's bases differ
        # a Core INSERT of the row kombu's ORM would write, without its unit of work
        row = {"queue_id": self._queue_id(queue), "payload": dumps(payload), "visible": True, "version": 1}
        try:
            self.session.execute(self.message_cls.__table__.insert(), row)
            self.session.commit()
        except OperationalError:
            # as kombu's own: the publish fails, to be retried, rather than report a lost message sent
            self.session.rollback()
            raise

    def _engine_from_config(self) -> Engine:
        engine: Engine = super()._engine_from_config()
        event.listen(engine, "connect", _broker_pragmas)
        return engine


def _broker_pragmas(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
    # Each send is a transaction of its own, which the default rollback journal with full
    # sync writes with fsyncs of its own; WAL with NORMAL sync syncs at checkpoints. A
    # message lost with the machine's power is no loss: its job stays queued in the
    # database, and the requeue sweep sends it again.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class SQLiteBroker(SQLAlchemyTransport):
    """Celery's SQLAlchemy transport, polling every 0.1 s instead of 1 s. With prefetch 1 a
    worker asks for its next message only after finishing a job, and waiting out a
    one-second poll each time would cost more than training a small job."""

    Channel = SQLiteChannel
    polling_interval = 0.1


class TrainqCelery(Celery):
    """A Celery app that knows trainq's settings (a task reads its database from them)."""

    settings: Settings


def create_celery(
    settings: Settings, *, app_class: type[TrainqCelery] = TrainqCelery, include: tuple[str, ...] = ()
) -> TrainqCelery:
    """The app that sends (the API) or also runs (a worker: its task modules in `include`)."""
    # the SQLAlchemy transport has no option for its polling interval (its options go to create_engine)
    TRANSPORT_ALIASES["trainq-sqlite"] = f"{__name__}:SQLiteBroker"
    app = app_class("trainq", broker=broker_url(settings), include=list(include), set_as_current=False)
    app.settings = settings
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        result_backend=None,
        task_default_queue=QUEUE,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options(settings.broker_url),
        # a submit must not hang on a dead broker: the job is stored, and the sweep sends it later
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5, "interval_max": 1},
        worker_hijack_root_logger=False,
    )
    return app


def broker_url(settings: Settings) -> str:
    url = settings.broker_url
    if url.startswith("sqla+sqlite:"):
        return "trainq-sqlite+" + url.removeprefix("sqla+")
    return url


def transport_options(broker_url: str) -> dict[str, Any]:
    if broker_url.startswith(("sqla+", "sqlalchemy+", "trainq-sqlite+")):
        # the SQLAlchemy transport hands these to create_engine, and nothing else
        return {"connect_args": {"timeout": SQLITE_LOCK_WAIT_SECONDS}} if "sqlite" in broker_url else {}
    return {"visibility_timeout": VISIBILITY_TIMEOUT_SECONDS, "socket_connect_timeout": 2}


# --- sending ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One task to run: its name, the id of the job or evaluation it runs, where it goes."""

    task: str
    id: str
    route: Route


def job_message(job_id: str, route: Route) -> Message:
    """A job's message: its id on its device's queue at its priority; a worker claims the job when it takes it."""
    return Message(RUN_JOB, job_id, route)


def evaluation_message(evaluation_id: str) -> Message:
    """An evaluation's message, on the queue every worker takes from (any worker can run one)."""
    return Message(RUN_EVALUATION, evaluation_id, Route(QUEUE, SINGLE_PRIORITY))


def send(app: Celery, message: Message) -> None:
    app.send_task(message.task, args=[message.id], queue=message.route.queue, priority=message.route.priority)


def send_job(app: Celery, job_id: str, route: Route) -> None:
    send(app, job_message(job_id, route))


def send_evaluation(app: Celery, evaluation_id: str) -> None:
    send(app, evaluation_message(evaluation_id))


def session_info(app: Celery) -> dict[str, Any]:
    """What a session must carry in its `info` for `send_after_commit` to send through `app`
    (`services.db.session.new_session_factory(settings, info=...)`)."""
    return {_CELERY: app}


def send_after_commit(session: Session, message: Message) -> None:
    """Send `message` once the session's transaction commits, never if it rolls back.

    A session without a Celery app (`session_info`) sends nothing: the requeue sweep sends
    what is queued once `requeue_after_seconds` have passed."""
    app = session.info.get(_CELERY)
    if app is None:
        log.debug("%s %s: this session sends nothing; the requeue sweep will", message.task, message.id)
        return
    outbox = next((action for action in pending_after_commit(session) if isinstance(action, _Outbox)), None)
    if outbox is None:
        outbox = _Outbox(app)
        after_commit(session, outbox)
    outbox.messages.append(message)


class _Outbox:
    """The messages of one transaction, sent in order once it committed."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.messages: list[Message] = []

    def __call__(self) -> None:
        for index, message in enumerate(self.messages):
            try:
                send(self.app, message)
            except Exception:
                # Stored and queued: the workers' requeue sweep sends the rest once
                # requeue_after_seconds have passed, so the request still succeeds. One
                # failure is enough to stop: each send to a dead broker waits out its retries.
                log.exception(
                    "sending %s %s failed (and %d more not tried); the requeue sweep will send them",
                    message.task,
                    message.id,
                    len(self.messages) - index - 1,
                )
                return


# --- the broker's state ---------------------------------------------------------------------


def broker_reachable(app: Celery, timeout: float = 2.0) -> None:
    """Raise unless the broker answers a real round trip, not merely a socket: declaring
    the job queue (as a worker does), which reads its length."""
    with app.connection_for_read() as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=timeout)
        queue = Queue(QUEUE, Exchange(QUEUE), routing_key=QUEUE, channel=connection.default_channel)
        queue.declare()


def messages_waiting(app: Celery, queue: str) -> int:
    """How many messages `queue` holds that no worker has taken yet (every priority of it)."""
    with app.connection_for_read() as connection:
        return int(connection.default_channel.queue_declare(queue=queue, durable=True, auto_delete=False).message_count)
