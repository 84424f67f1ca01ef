"""trainq's Prometheus metrics: what each means is documented in docs/metrics.md.

Two kinds live here. A worker counts what it does as it does it (`JOBS_FINISHED`,
`EPOCH_SECONDS`, `REPORT_SECONDS`, `JOB_RESUMES`): these are created at import, and in
a worker's training processes (Celery's prefork pool) they are written to files in
`PROMETHEUS_MULTIPROC_DIR`, which the worker's own /metrics adds up (`worker_registry`).
The API reports the state of the whole service, read when Prometheus scrapes
(`ServiceCollector`): jobs by status from the database, messages waiting on each queue
from the broker. HTTP request counts and latencies come from the API's instrumentation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from trainq.services.db.models import Job
from trainq.services.db.session import session_scope
from trainq.services.jobs.states import JobStatus

log = logging.getLogger(__name__)

# an epoch of a small job takes milliseconds, of a large one minutes
EPOCH_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900)
REPORT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)

JOBS_FINISHED = Counter(
    "trainq_jobs_finished",
    "Jobs this worker ended, by the state it ended them in",
    ["status"],
)
EPOCH_SECONDS = Histogram(
    "trainq_epoch_seconds",
    "Training time of one epoch (its report to the database not included)",
    buckets=EPOCH_BUCKETS,
)
REPORT_SECONDS = Histogram(
    "trainq_report_seconds",
    "Time to write one report of epochs (logs and checkpoint) to the database",
    buckets=REPORT_BUCKETS,
)
JOB_RESUMES = Counter(
    "trainq_job_resumes",
    "Jobs this worker took over from a lost worker and resumed from their checkpoint",
)


def worker_registry() -> CollectorRegistry:
    """What a worker's /metrics shows: the sum over its processes' metric files."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


class ServiceCollector(Collector):
    """`trainq_jobs{status}` from the database and `trainq_queue_depth{queue}` from the
    broker, read at each scrape. A queue the broker cannot count is left out of that
    scrape (and logged) rather than failing the whole of it."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        messages_waiting: Callable[[str], int],
        queues: Iterable[str],
    ) -> None:
        self.session_factory = session_factory
        self.messages_waiting = messages_waiting
        self.queues = sorted(set(queues))

    def collect(self) -> Iterator[Metric]:
        with session_scope(self.session_factory) as session:
            rows = session.execute(select(Job.status, func.count()).group_by(Job.status))
            counts = {status: count for status, count in rows}
        jobs = GaugeMetricFamily("trainq_jobs", "Jobs in the database, by status", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status.value, 0))
        yield jobs
        depth = GaugeMetricFamily(
            "trainq_queue_depth", "Messages waiting on a broker queue, not yet taken by a worker", labels=["queue"]
        )
        for queue in self.queues:
            try:
                depth.add_metric([queue], self.messages_waiting(queue))
            except Exception:
                log.warning("queue %s: the broker did not answer its length", queue, exc_info=True)
        yield depth
