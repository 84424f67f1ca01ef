"""How trainq's processes log: plain text (the default) or, with TRAINQ_LOG_FORMAT=json,
one JSON object per line for a log collector, the job's id in `job_id` on every line
logged while a worker works on that job.

A worker's task marks the job it works on with `about_job`; the filter reads the mark
(a context variable: the task's own thread; a thread the task starts carries no mark).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

_current_job: ContextVar[str | None] = ContextVar("trainq_job", default=None)


@contextmanager
def about_job(job_id: str) -> Iterator[None]:
    """Every line logged in the block is about `job_id`."""
    token = _current_job.set(job_id)
    try:
        yield
    finally:
        _current_job.reset(token)


class JobId(logging.Filter):
    """Puts the current job's id on a record (`record.job_id`), unless it has one."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "job_id", None) is None:
            record.job_id = _current_job.get()
        return True


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, process, message,
    job_id when the line is about a job, exception when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "message": record.getMessage(),
        }
        job_id = getattr(record, "job_id", None)
        if job_id is not None:
            document["job_id"] = job_id
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


def log_as_json(level: int = logging.INFO) -> None:
    """Send every logger's records, as JSON lines, to stderr: the root's one handler."""
    # the process's own stderr: Celery later points sys.stderr at its logger, which would loop
    handler = logging.StreamHandler(sys.__stderr__)
    handler.setFormatter(JsonLines())
    handler.addFilter(JobId())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
