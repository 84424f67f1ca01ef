"""The worker process: `celery -A trainq.worker.app worker` finds `app` here.

The broker and its settings are `services.queue`'s, shared with the API; what is the
worker's alone is here: the device it serves, its task modules, and what runs beside the
consumer (the requeue sweep and the worker's presence in the registry), started and
stopped by Celery's worker signals, which `create_worker_app` connects.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import cached_property
from typing import Any

from celery.signals import setup_logging, worker_ready, worker_shutdown

from trainq.services import log_format, queue
from trainq.services.db.session import session_factory
from trainq.services.evaluations import service as evaluations
from trainq.services.settings import Settings, get_settings
from trainq.services.training import requeue_stranded
from trainq.services.workers.device import WorkerDevice, detect
from trainq.worker import shutdown
from trainq.worker.metrics import MULTIPROC_VARIABLE, MetricsServer
from trainq.worker.presence import Presence

log = logging.getLogger(__name__)

TASK_MODULES = ("trainq.worker.tasks", "trainq.worker.evaluations")


class WorkerCelery(queue.TrainqCelery):
    """The Celery app of a worker: it knows the device it serves."""

    @cached_property
    def device(self) -> WorkerDevice:
        """The device this worker serves, found once (in the parent, before the pool forks)."""
        return detect(self.settings)


def create_worker_app(settings: Settings) -> WorkerCelery:
    app = queue.create_celery(settings, app_class=WorkerCelery, include=TASK_MODULES)
    assert isinstance(app, WorkerCelery)
    worker_ready.connect(_start_sweep)
    worker_shutdown.connect(_stop_sweep)
    if settings.log_format == "json":
        # a receiver of setup_logging stands in for Celery's own logging setup
        setup_logging.connect(_log_as_json)
    shutdown.connect()  # a warm shutdown hands the running jobs back
    return app


class RequeueSweep:
    """Every `requeue_after_seconds / 2`, re-send the jobs the database says are waiting but
    no broker message may carry (see `services.training.requeue_stranded`), and the
    evaluations (`services.evaluations.service.requeue_stranded`): queued ones only as
    many as their queue lacks messages. Each worker runs one; a job sent twice is
    harmless, since its claim lets one delivery run it."""

    def __init__(self, app: WorkerCelery) -> None:
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
                    lambda job_id, route: queue.send_job(self.app, job_id, route),
                    settings,
                    self.app.device.kind,
                    lambda name: queue.messages_waiting(self.app, name),
                )
            except Exception:
                log.exception("requeue sweep failed; trying again in %.1fs", self.interval)
            # evaluations are leased as jobs are, and swept beside them (issue 4)
            try:
                evaluations.requeue_stranded(
                    session_factory(settings),
                    lambda evaluation_id: queue.send_evaluation(self.app, evaluation_id),
                    settings,
                    lambda name: queue.messages_waiting(self.app, name),
                )
            except Exception:
                log.exception("evaluation requeue sweep failed; trying again in %.1fs", self.interval)


_sweeps: dict[int, RequeueSweep] = {}
_presences: dict[int, Presence] = {}
_metrics: dict[int, MetricsServer] = {}


def _log_as_json(loglevel: int | str | None = None, **_: Any) -> None:
    level = logging.getLevelName(loglevel) if isinstance(loglevel, str) else loglevel
    log_format.log_as_json(level if isinstance(level, int) else logging.INFO)


def _start_sweep(sender: Any, **_: Any) -> None:
    # worker_ready fires in the worker's main process, which takes messages and does not
    # train (the pool's children do), so the sweep and the worker's own heartbeat (distinct
    # from the jobs' lease heartbeats, which the training processes keep) run beside the consumer
    if isinstance(sender.app, WorkerCelery):
        presence = _presences[os.getpid()] = Presence(
            sender.app.settings,
            name=sender.hostname,
            device=sender.app.device,
            concurrency=sender.controller.concurrency,
        )
        presence.start()
        sweep = _sweeps[os.getpid()] = RequeueSweep(sender.app)
        sweep.start()
        settings = sender.app.settings
        if settings.worker_metrics_port is not None:
            if MULTIPROC_VARIABLE not in os.environ:
                log.warning("no worker metrics: start the worker with `trainq worker` (it sets %s)", MULTIPROC_VARIABLE)
            else:
                _metrics[os.getpid()] = MetricsServer(settings.worker_metrics_host, settings.worker_metrics_port)


def _stop_sweep(**_: Any) -> None:
    sweep = _sweeps.pop(os.getpid(), None)
    if sweep is not None:
        sweep.stop()
    presence = _presences.pop(os.getpid(), None)
    if presence is not None:
        presence.stop()
    metrics = _metrics.pop(os.getpid(), None)
    if metrics is not None:
        metrics.stop()


app = create_worker_app(get_settings())
