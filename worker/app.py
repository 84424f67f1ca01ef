"""The Celery app: a broker that carries job ids, and nothing else.

Results live in trainq's database, so Celery stores none. Messages are acknowledged
after the task ran (acks_late), one at a time per process (prefetch 1): a worker that
dies mid-job leaves its message to the broker, and the job's lease in the database
decides who runs it. `celery -A trainq.worker.app worker` finds `app` here.

With `REDIS_URL` unset, the broker is Celery's SQLAlchemy transport on a SQLite file.
Its consumers take a message inside `BEGIN IMMEDIATE` (a write lock on the file), so
several worker processes never take the same one; the lock wait is raised from
SQLite's 5 seconds so that a busy moment makes a consumer wait rather than fail.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import cached_property
from json import loads
from queue import Empty
from typing import Any

from celery import Celery
from celery.signals import worker_ready, worker_shutdown
from kombu import Exchange, Queue
from kombu.transport import TRANSPORT_ALIASES
from kombu.transport.sqlalchemy import Channel as SQLAlchemyChannel
from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport
from kombu.utils.encoding import bytes_to_str
from sqlalchemy import text

from trainq.services.datasets import evaluations
from trainq.services.db.session import session_factory
from trainq.services.placement import SHARED_QUEUE, Route
from trainq.services.settings import Settings, get_settings
from trainq.services.training import requeue_stranded
from trainq.services.workers.device import WorkerDevice, detect
from trainq.worker.evaluations import send_evaluation
from trainq.worker.presence import Presence

log = logging.getLogger(__name__)

RUN_JOB = "trainq.run_job"
# the queue every worker consumes (jobs with device auto); see services.placement
QUEUE = SHARED_QUEUE
# Redis hands an unacknowledged message to another consumer after this long. A job may
# train for hours, and a dead worker's job is found by its expired lease (the requeue
# sweep), not by redelivery, so this only needs to outlast the longest job.
VISIBILITY_TIMEOUT_SECONDS = 7 * 24 * 3600
SQLITE_LOCK_WAIT_SECONDS = 60


class SQLiteChannel(SQLAlchemyChannel):
    """The transport's channel, but a message taken is deleted: kombu marks it invisible
    and keeps the row forever, so broker.db would grow by a row for every message ever
    sent. (The transport has no acknowledgements: a message is gone once taken either way.)"""

    def _get(self, queue: str, timeout: float | None = None) -> Any:
        # `timeout` is in kombu's abstract signature only: this channel is polled, never blocks
        obj = self._get_or_create(queue)
        self.session.execute(text("BEGIN IMMEDIATE TRANSACTION"))
        try:
            message = (
                self.session.query(self.message_cls)
                .filter(self.message_cls.queue_id == obj.id, self.message_cls.visible.is_not(False))
                .order_by(self.message_cls.sent_at, self.message_cls.id)
                .first()
            )
            if message is None:
                raise Empty()
            self.session.delete(message)
            return loads(bytes_to_str(message.payload))
        finally:
            self.session.commit()


class SQLiteBroker(SQLAlchemyTransport):
    """Celery's SQLAlchemy transport, polling every 0.1 s instead of 1 s. With prefetch 1 a
    worker asks for its next message only after finishing a job, and waiting out a
    one-second poll each time would cost more than training a small job."""

    Channel = SQLiteChannel
    polling_interval = 0.1


# the transport has no option for its polling interval (its options go to create_engine)
TRANSPORT_ALIASES["trainq-sqlite"] = "trainq.worker.app:SQLiteBroker"


class TrainqCelery(Celery):
    """A Celery app that knows trainq's settings (the task reads its database from them)."""

    settings: Settings

    @cached_property
    def device(self) -> WorkerDevice:
        """The device this worker serves, found once (in the parent, before the pool forks)."""
        return detect(self.settings)


def create_celery(settings: Settings) -> TrainqCelery:
    app = TrainqCelery(
        "trainq",
        broker=broker_url(settings),
        include=["trainq.worker.tasks", "trainq.worker.evaluations"],
        set_as_current=False,
    )
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


def send_job(app: Celery, job_id: str, route: Route) -> None:
    """Put the job's id on its queue at its priority; a worker claims the job when it takes the message."""
    app.send_task(RUN_JOB, args=[job_id], queue=route.queue, priority=route.priority)


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


class RequeueSweep:
    """Every `requeue_after_seconds / 2`, re-send the jobs the database says are waiting but
    no broker message may carry (see `services.training.requeue_stranded`), and the
    evaluations (`services.datasets.evaluations.requeue_stranded`): queued ones only as
    many as their queue lacks messages. Each worker runs one; a job sent twice is
    harmless, since its claim lets one delivery run it."""

    def __init__(self, app: TrainqCelery) -> None:
        self.app = app
        self.interval = max(app.settings.requeue_after_seconds / 2, 0.5)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="trainq-requeue-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def _run(self) -> None:
        settings = self.app.settings
        while not self._stopped.wait(self.interval):
            try:
                requeue_stranded(
                    session_factory(settings),
                    lambda job_id, route: send_job(self.app, job_id, route),
                    settings,
                    self.app.device.kind,
                    lambda queue: messages_waiting(self.app, queue),
                )
            except Exception:
                log.exception("requeue sweep failed; trying again in %.1fs", self.interval)
            # evaluations are leased as jobs are, and swept beside them (issue 4)
            try:
                evaluations.requeue_stranded(
                    session_factory(settings),
                    lambda evaluation_id: send_evaluation(self.app, evaluation_id),
                    settings,
                    lambda queue: messages_waiting(self.app, queue),
                )
            except Exception:
                log.exception("evaluation requeue sweep failed; trying again in %.1fs", self.interval)


_sweeps: dict[int, RequeueSweep] = {}
_presences: dict[int, Presence] = {}


@worker_ready.connect
def _start_sweep(sender: Any, **_: Any) -> None:
    # worker_ready fires in the worker's main process, which takes messages and does not
    # train (the pool's children do), so the sweep and the worker's own heartbeat (distinct
    # from the jobs' lease heartbeats, which the training processes keep) run beside the consumer
    if isinstance(sender.app, TrainqCelery):
        presence = _presences[os.getpid()] = Presence(
            sender.app.settings,
            name=sender.hostname,
            device=sender.app.device,
            concurrency=sender.controller.concurrency,
        )
        presence.start()
        sweep = _sweeps[os.getpid()] = RequeueSweep(sender.app)
        sweep.start()


@worker_shutdown.connect
def _stop_sweep(**_: Any) -> None:
    sweep = _sweeps.pop(os.getpid(), None)
    if sweep is not None:
        sweep.stop()
    presence = _presences.pop(os.getpid(), None)
    if presence is not None:
        presence.stop()


app = create_celery(get_settings())
