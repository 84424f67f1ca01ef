"""What a route may ask for: the settings, a database session, the way to enqueue a job,
the trained-model cache. All of it lives on `app.state`, set by `create_app`, so a test
builds an app on its own database and broker without touching globals."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from services.db.session import session_scope
from services.settings import Settings
from services.trained_models import TrainedModels

Enqueue = Callable[[str], None]


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _session(request: Request) -> Iterator[Session]:
    # one transaction per request: committed when the route returns, rolled back if it raises
    with session_scope(request.app.state.session_factory) as session:
        yield session


def _enqueue(request: Request) -> Enqueue:
    return request.app.state.enqueue


def _trained_models(request: Request) -> TrainedModels:
    return request.app.state.trained_models


SettingsDep = Annotated[Settings, Depends(_settings)]
# scope="function": the commit happens before the response is sent, so a failed commit
# answers an error instead of a success for something that was not stored
SessionDep = Annotated[Session, Depends(_session, scope="function")]
EnqueueDep = Annotated[Enqueue, Depends(_enqueue)]
TrainedModelsDep = Annotated[TrainedModels, Depends(_trained_models)]
