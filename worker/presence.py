"""A worker's presence in the registry: recorded at start, a heartbeat every
`worker_heartbeat_seconds`, marked stopped at a clean shutdown. It runs as a thread in the
worker's main process (which consumes messages and does not train), apart from the jobs'
lease heartbeats, which the training processes keep."""

from __future__ import annotations

import logging
import os
import socket
import threading

from trainq.services.db.session import DATABASE_UNAVAILABLE, outage, session_factory, session_scope
from trainq.services.settings import Settings
from trainq.services.workers import registry
from trainq.services.workers.device import WorkerDevice

log = logging.getLogger(__name__)


class Presence:
    def __init__(self, settings: Settings, *, name: str, device: WorkerDevice, concurrency: int) -> None:
        self.factory = session_factory(settings)
        self.interval = settings.worker_heartbeat_seconds
        self.name = name
        self.device = device
        self.concurrency = concurrency
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="trainq-worker-heartbeat", daemon=True)

    def start(self) -> None:
        try:
            self._record()
        except Exception as error:
            # a worker started while the database is down registers at its first heartbeat
            # after the database's return (the registry does not know it yet)
            log.warning(
                "worker %s: could not register (%s); trying again every %gs", self.name, outage(error), self.interval
            )
        log.info(
            "worker %s: %s device %s through %s",
            self.name,
            self.device.kind,
            self.device.name,
            self.device.array_library,
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(10)
        try:
            with session_scope(self.factory) as session:
                registry.stopped(session, self.name)
        except Exception:
            log.exception("worker %s: could not record its stop; it will show as lost", self.name)

    def _record(self) -> None:
        with session_scope(self.factory) as session:
            registry.register(
                session,
                name=self.name,
                host=socket.gethostname(),
                pid=os.getpid(),
                device=self.device,
                concurrency=self.concurrency,
            )

    def _beat(self) -> None:
        while not self._stopped.wait(self.interval):
            try:
                with session_scope(self.factory) as session:
                    known = registry.heartbeat(session, self.name)
                if not known:
                    self._record()
            except DATABASE_UNAVAILABLE as error:
                # the database may be back before the worker is shown lost; an outage is no
                # bug: a line per beat, no traceback
                log.warning("worker %s: heartbeat failed: the database is unreachable (%s)", self.name, outage(error))
            except Exception:
                log.exception("worker %s: heartbeat failed", self.name)
