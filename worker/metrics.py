"""A worker's own /metrics (docs/metrics.md), served from its main process on
TRAINQ_WORKER_METRICS_PORT while it runs.

Celery's prefork pool trains in child processes, so the counters live in prometheus-client's
multiprocess mode: every process writes its values to files in one folder of the worker's
own, and the main process adds them up when scraped. The folder must be named (in
PROMETHEUS_MULTIPROC_DIR) before prometheus-client is first imported, so `trainq worker`
calls `use_metrics_folder` before it imports the Celery app; this module imports
prometheus-client only inside `serve`.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from trainq.services.settings import Settings

log = logging.getLogger(__name__)

MULTIPROC_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def use_metrics_folder(settings: Settings) -> Path:
    """A fresh folder for this worker's metric files, named in the environment its pool's
    processes inherit (a folder left by an earlier run would add its counts to ours)."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before the worker's metrics folder was set")
    folder = (settings.home / "metrics" / f"worker-{os.getpid()}").resolve()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[MULTIPROC_VARIABLE] = str(folder)
    return folder


class MetricsServer:
    """The HTTP server of a worker's /metrics, in a thread of the worker's main process."""

    def __init__(self, host: str, port: int) -> None:
        from prometheus_client import start_http_server

        from trainq.services.metrics import worker_registry

        self.server: Any
        self.server, self._thread = start_http_server(port, addr=host, registry=worker_registry())
        log.info("worker metrics at http://%s:%d/metrics", host, port)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        folder = os.environ.get(MULTIPROC_VARIABLE)
        if folder:
            shutil.rmtree(folder, ignore_errors=True)
