"""A warm shutdown hands the running jobs back instead of finishing them.

Celery's warm shutdown (SIGTERM, or Ctrl-C of `trainq worker` or `trainq up`) stops taking
messages and waits for the running tasks to end, however long a job trains. Here the
worker's main process tells its pool processes, with SIGUSR2 (which Celery's pool leaves
alone), that it is stopping; their task sets `STOPPING`, the fit stops at its next batch,
and the job is queued again at once (services.training `hand_back`) for another worker to
resume from its last epoch's checkpoint, instead of waiting out its lease.

A second SIGTERM, or TRAINQ_HAND_BACK_SECONDS (30 s) without the pool ending, terminates
the pool processes (SIGTERM; Celery's pool children die of it): the worker exits, and the
jobs they held resume once their leases expire, as after a crash.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Any

from celery.signals import worker_init, worker_process_init, worker_shutting_down

log = logging.getLogger(__name__)

# set in a process whose worker is stopping: a task's cue to hand its job back
STOPPING = threading.Event()
HAND_BACK_SIGNAL = signal.SIGUSR2

_workers: list[Any] = []  # this main process's WorkController


def connect() -> None:
    """Connect to Celery's worker signals (`worker.app.create_worker_app` does)."""
    worker_process_init.connect(_listen_for_stopping)
    worker_init.connect(_remember_worker)
    worker_shutting_down.connect(_hand_back_jobs)


def _listen_for_stopping(**_: Any) -> None:
    signal.signal(HAND_BACK_SIGNAL, lambda *_: STOPPING.set())


def _remember_worker(sender: Any, **_: Any) -> None:
    _workers.append(sender)


def _hand_back_jobs(sig: str, how: str, **_: Any) -> None:
    # runs in the main process's signal handler: signals and a timer only, nothing that blocks
    if how != "Warm" or not _workers:
        return
    if STOPPING.is_set():
        _terminate_pool("a second signal")
        return
    STOPPING.set()  # the solo pool runs its task in this process
    for pid in _pool_pids():
        _signal(pid, HAND_BACK_SIGNAL)
    seconds = _workers[-1].app.settings.hand_back_seconds
    timer = threading.Timer(seconds, _terminate_pool, args=(f"{seconds:g}s passed",))
    timer.daemon = True
    timer.start()


def _terminate_pool(why: str) -> None:
    pids = _pool_pids()
    if pids:
        log.warning("shutdown: %s; terminating the pool processes %s", why, pids)
    for pid in pids:
        _signal(pid, signal.SIGTERM)


def _pool_pids() -> list[int]:
    pool = getattr(_workers[-1], "pool", None) if _workers else None
    try:
        return [pid for pid in pool.info.get("processes", []) if pid != os.getpid()] if pool is not None else []
    except (AttributeError, TypeError):  # a pool not started, or one without processes (solo)
        return []


def _signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass  # it ended meanwhile
