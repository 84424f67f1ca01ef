"""The FastAPI app: `create_app()` (uvicorn's `--factory trainq.api.app:create_app`).

Everything a route needs is put on `app.state` here, from one Settings: the database's
session factory (whose sessions send what they recorded through the Celery app once
they commit, `services.queue`), the broker check, the trained-model cache.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import redis.asyncio
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from starlette.middleware.cors import CORSMiddleware

from trainq.api import errors, metrics
from trainq.api.body import BodySizeLimit
from trainq.api.deps import AUTHENTICATED
from trainq.api.routes import dashboard, datasets, evaluations, health, job_events, jobs, models, sweeps, workers
from trainq.services import queue
from trainq.services.db.session import new_session_factory
from trainq.services.settings import Settings, get_settings
from trainq.services.trained_models import TrainedModels
from trainq.services.workers.registry import OnlineKinds

DESCRIPTION = """Submit training jobs for TensorFlow.js-style Sequential Dense models, watch
them train on Celery workers epoch by epoch, then read the weights, evaluate and predict.
Every 4xx answer is `{"detail": "...", "errors": [{"field": "model.layers[0].units", "message": "..."}]}`.

Every `/v1` route needs an API key, sent as `Authorization: Bearer <key>` (Authorize, above):
`trainq up` saves one in TRAINQ_HOME/api-key; `trainq keys create --tenant NAME` makes others."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    celery = queue.create_celery(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        # the broker connections the submits opened
        celery.close()
        if app.state.redis is not None:
            await app.state.redis.aclose()

    # /docs (Swagger UI) and /redoc from the scripts the fastapi-offline package installs,
    # not from a CDN: like the dashboard, the reference must work on a closed network
    app = FastAPIOffline(title="trainq", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.session_factory = new_session_factory(settings, queue.session_info(celery))
    app.state.broker_check = partial(queue.broker_reachable, celery)
    app.state.trained_models = TrainedModels(settings.model_cache_size)
    app.state.online_kinds = OnlineKinds(lost_after=settings.worker_lost_after_seconds)
    # the event streams' wake-ups (services.jobs.live); None: they poll the database
    app.state.redis = redis.asyncio.Redis.from_url(settings.redis_url) if settings.redis_url else None
    errors.install(app)
    app.include_router(health.router)
    # every /v1 route needs an API key; the health checks, the dashboard's files and the
    # API reference stay open
    for router in (
        jobs.router,
        job_events.router,
        datasets.router,
        evaluations.router,
        sweeps.router,
        workers.router,
        models.router,
    ):
        app.include_router(router, dependencies=AUTHENTICATED)
    dashboard.install(app)
    metrics.install(app, app.state.session_factory, partial(queue.messages_waiting, celery))
    # a dataset upload streams to storage under its own, larger limit
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_request_bytes,
        drain_bytes=settings.drain_bytes,
        streamed=("/v1/datasets",),
    )
    # Outermost, so that every answer (a 401, a 413) carries its CORS headers. Only the
    # listed origins' pages may call the API from a browser, with their key in a header:
    # no credentials (cookies) are allowed, none are used.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "DELETE"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        # a model file's ETag and the epoch it holds (tf.loadLayersModel from a page)
        expose_headers=["Retry-After", "ETag", "X-Trainq-Epoch"],
        max_age=600,
    )
    return app
