"""Raw Celery for bench/service.py: a task that does nothing, with trainq's worker settings.

    celery -A bench.noop worker --concurrency 1 --queues bench-noop

JSON, acks_late, prefetch 1, no results, the broker from REDIS_URL: the bound a Celery
service on this Redis and this machine cannot beat, against which trainq's rate is read.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

QUEUE = "bench-noop"
NOOP = "bench.noop"

# trainq's Celery settings (services.queue), for every peer bench/service.py runs
SETTINGS: dict[str, Any] = dict(
    task_serializer="json",
    accept_content=["json"],
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    result_backend=None,
    worker_hijack_root_logger=False,
)
BROKER_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")

app = Celery("bench", broker=BROKER_URL, set_as_current=False)
app.conf.update(SETTINGS, task_default_queue=QUEUE)


@app.task(name=NOOP)
def noop(_job_id: str) -> None:
    return None
