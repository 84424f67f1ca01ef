"""/v1/workers: the workers registry, each worker online, lost or stopped."""

from __future__ import annotations

from fastapi import APIRouter

from trainq.api.deps import PrincipalDep, SessionDep, SettingsDep
from trainq.api.schemas import WorkerList, WorkerRead
from trainq.services.workers import registry

router = APIRouter(prefix="/v1/workers", tags=["workers"])


@router.get("", summary="The workers: device, library, current jobs, online or lost")
def list_workers(session: SessionDep, principal: PrincipalDep, settings: SettingsDep) -> WorkerList:
    states = registry.list_workers(session, principal, lost_after=settings.worker_lost_after_seconds)
    return WorkerList(items=[WorkerRead.of(state) for state in states])
