"""/metrics for Prometheus: HTTP requests by route template (prometheus-fastapi-instrumentator's
http_requests_total and http_request_duration_seconds) and the service's state read at
each scrape (`services.metrics.ServiceCollector`). docs/metrics.md lists every metric.

Unauthenticated, as Prometheus scrapes by default: it shows counts and timings only, no
job's id, name, spec or data. An API bound beyond localhost shows it to whoever reaches
the port (docs/metrics.md says how to keep it in).
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_fastapi_instrumentator import Instrumentator
from sqlalchemy.orm import Session, sessionmaker

from trainq.services.metrics import ServiceCollector
from trainq.services.placement import QUEUES

METRICS_PATH = "/metrics"


def install(app: FastAPI, session_factory: sessionmaker[Session], messages_waiting: Callable[[str], int]) -> None:
    # a registry of the app's own: several apps in one process (the tests) count apart
    registry = CollectorRegistry()
    registry.register(ServiceCollector(session_factory, messages_waiting, QUEUES.values()))
    instrumentator = Instrumentator(registry=registry, excluded_handlers=[METRICS_PATH])
    instrumentator.instrument(app).expose(app, endpoint=METRICS_PATH, include_in_schema=False)
