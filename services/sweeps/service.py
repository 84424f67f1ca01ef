"""Sweeps: create one job per point (all validated before anything is stored), rank them,
cancel them, delete them. Functions take the session first and never commit, as in services.jobs.

Ranking: by the final value of the metric (the last epoch's logs of a succeeded job),
smallest first for goal "min", largest first for "max". Equal values share a rank (1, 2,
2, 4) and are listed in point order. A job without a final value (not succeeded yet,
failed, cancelled, or the metric missing or not finite in its logs) has no rank and is
listed after the ranked ones, in point order.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Row, delete, select, update
from sqlalchemy.orm import Session, defer
from sqlalchemy.orm.util import identity_key

from trainq.services import paging
from trainq.services.datasets import jobs as dataset_jobs
from trainq.services.db.models import NAME_MAX_LENGTH, Evaluation, Job, Sweep, utcnow
from trainq.services.db.upsert import insert
from trainq.services.engine import EngineError
from trainq.services.errors import InvalidInput, PayloadTooLarge, SweepNotDeletable, SweepNotFound
from trainq.services.fields import field_path
from trainq.services.idempotency import hash_request, insert_once
from trainq.services.jobs.states import Device, JobStatus
from trainq.services.jobs.submit import NewJob, store_many
from trainq.services.logs import finite_or_none
from trainq.services.spec import JobSpec
from trainq.services.sweeps.space import Point, RandomDraws, apply, points_of
from trainq.services.tenants import quotas
from trainq.services.tenants.principal import Principal


@dataclass(frozen=True)
class RankedJob:
    job: Job
    point: Point
    value: float | None  # the metric's final value; None: not (yet) rankable
    rank: int | None


@dataclass(frozen=True)
class Best:
    value: float
    job_id: str
    point: Point


@dataclass(frozen=True)
class SweepSummary:
    sweep: Sweep
    counts: dict[str, int]  # its jobs by status
    best: Best | None  # the best final value of its metric so far; None: no job has one


@dataclass(frozen=True)
class Ranking:
    sweep: Sweep
    metric: str
    goal: str
    jobs: list[RankedJob]  # ranked ones first, best first


def create_sweep(
    session: Session,
    principal: Principal,
    *,
    base: JobSpec,
    grid: dict[str, list[Any]] | None,
    random: RandomDraws | None,
    device: Device,
    name: str | None,
    metric: str,
    goal: str,
    max_points: int,
    max_inline_bytes: int,
    idempotency_key: str | None = None,
) -> tuple[Ranking, bool]:
    """Store the sweep and its jobs, queued, one per point of the `grid` or the `random`
    draws (one of the two), in point order; their messages go to the workers once the
    caller commits. Every point is checked as a submitted job would be before anything is
    stored: one invalid point refuses the sweep, naming the point (`points[i]`) and the
    field at fault. Each job holds its own copy of inline data, so all the copies together
    must fit in `max_inline_bytes` (one request's worth); more is refused with 413 and a
    pointer to uploading a dataset. The new sweep, ranked (every job unranked yet), and
    True; or, for a retry with the `idempotency_key` of an earlier create and the same
    body, that sweep as it stands, and False (the key with another body: 409)."""
    points, space = points_of(grid, random)
    if not points:
        raise InvalidInput("body", "the sweep has no points")
    if len(points) > max_points:
        raise InvalidInput("body", f"the sweep has {len(points)} points, more than the limit of {max_points}")
    if name is not None and len(name) > NAME_MAX_LENGTH:
        raise InvalidInput("name", f"at most {NAME_MAX_LENGTH} characters")
    document = base.model_dump(mode="json", by_alias=True, exclude_none=True)
    inline = sum(len(json.dumps(document["data"].get(key, []))) for key in ("x", "y", "validationData"))
    if inline * len(points) > max_inline_bytes:
        raise PayloadTooLarge(
            "base.data",
            f"{len(points)} jobs of {inline:,} bytes of inline data each would store {inline * len(points):,} bytes, "
            f"over the limit of {max_inline_bytes:,}; upload the data (POST /v1/datasets) and name it in "
            "data.datasetId",
        )
    specs = [_point_spec(session, principal, document, index, point) for index, point in enumerate(points)]
    values = dict(
        id=str(uuid.uuid4()),
        tenant=principal.tenant,
        name=name,
        base_spec=document,
        device=Device(device).value,
        space=space,
        points=points,
        metric=metric,
        goal=goal,
        created_at=utcnow(),
    )
    if idempotency_key is not None:
        request_hash = hash_request({key: values[key] for key in _REQUEST})
        keyed = {**values, "idempotency_key": idempotency_key, "request_hash": request_hash}
        earlier = insert_once(session, Sweep, keyed)
        if earlier is not None:
            return rank(session, principal, earlier.id), False
    else:
        session.execute(insert(session, Sweep).values(**values))
    # after the sweep's row: a replay takes no quota, and a refusal rolls its key back
    quotas.check_jobs(session, principal.tenant, adding=len(specs))
    sweep_id = str(values["id"])
    new_jobs = [
        NewJob(spec, _job_name(name, points[index]), Device(device), sweep=(sweep_id, index))
        for index, spec in enumerate(specs)
    ]
    for job, new in zip(store_many(session, principal, new_jobs), new_jobs, strict=True):
        dataset_jobs.record_use(session, job.id, new.spec)
    return rank(session, principal, sweep_id), True


# what a retry with an Idempotency-Key must repeat (the space as submitted, not its points:
# random draws are seeded, so the same request draws the same points)
_REQUEST = ("name", "base_spec", "device", "space", "metric", "goal")


def get_sweep(session: Session, principal: Principal, sweep_id: str) -> Sweep:
    """The sweep, if `principal` may see it; SweepNotFound otherwise, as if there were none."""
    return principal.find(session, Sweep, sweep_id, SweepNotFound(sweep_id))


def list_sweeps(
    session: Session, principal: Principal, *, cursor: str | None, limit: int, id_prefix: str | None = None
) -> tuple[list[SweepSummary], str | None]:
    """A page of sweeps, newest first, each with its jobs counted by status and its best
    final value (by its own metric and goal), and the next page's cursor (None on the last)."""
    query = select(Sweep).options(defer(Sweep.base_spec, raiseload=True)).where(principal.visible(Sweep.tenant))
    if id_prefix is not None:
        query = query.where(Sweep.id.startswith(id_prefix, autoescape=True))
    rows, next_cursor = paging.page(session, query, Sweep, cursor=cursor, limit=limit)
    # one query for the jobs of the whole page, only the columns a summary reads
    found = session.execute(
        select(Job.sweep_id, Job.id, Job.sweep_index, Job.status, Job.latest_logs).where(
            Job.sweep_id.in_([sweep.id for sweep in rows])
        )
    ).all()
    by_sweep: dict[str, list[Row[Any]]] = {sweep.id: [] for sweep in rows}
    for row in found:
        by_sweep[row.sweep_id].append(row)
    return [_summary(sweep, by_sweep[sweep.id]) for sweep in rows], next_cursor


def _summary(sweep: Sweep, rows: list[Row[Any]]) -> SweepSummary:
    counts: dict[str, int] = {}
    best: Best | None = None
    for row in sorted(rows, key=lambda row: row.sweep_index or 0):
        counts[row.status] = counts.get(row.status, 0) + 1
        value = _final_value(row.status, row.latest_logs, sweep.metric)
        if value is None:
            continue
        # strictly better: of equal values the first point is the best, as in the ranking
        if best is None or (value < best.value if sweep.goal == "min" else value > best.value):
            best = Best(value, row.id, sweep.points[row.sweep_index or 0])
    return SweepSummary(sweep, counts, best)


def sweep_jobs(session: Session, sweep_id: str) -> list[Job]:
    """The sweep's jobs in point order (their specs, data included, not loaded)."""
    query = (
        select(Job).options(defer(Job.spec, raiseload=True)).where(Job.sweep_id == sweep_id).order_by(Job.sweep_index)
    )
    return list(session.execute(query).scalars())


def rank(
    session: Session, principal: Principal, sweep_id: str, *, metric: str | None = None, goal: str | None = None
) -> Ranking:
    """The sweep's jobs ranked by the final value of `metric` (default: the sweep's own)."""
    sweep = get_sweep(session, principal, sweep_id)
    metric = metric or sweep.metric
    goal = goal or sweep.goal
    entries = [
        (job, sweep.points[job.sweep_index or 0], _final_value(job.status, job.latest_logs, metric))
        for job in sweep_jobs(session, sweep_id)
    ]
    ranked = sorted(
        ((job, point, value) for job, point, value in entries if value is not None),
        key=lambda entry: (entry[2] if goal == "min" else -entry[2], entry[0].sweep_index),
    )
    result: list[RankedJob] = []
    for position, (job, point, value) in enumerate(ranked):
        shared = result and result[-1].value == value
        result.append(RankedJob(job, point, value, result[-1].rank if shared else position + 1))
    result += [RankedJob(job, point, None, None) for job, point, value in entries if value is None]
    return Ranking(sweep, metric, goal, result)


def cancel_sweep(session: Session, principal: Principal, sweep_id: str) -> Ranking:
    """Cancel every job of the sweep not yet finished: queued ones at once, running ones
    at their worker's next heartbeat (as cancelling each job would). The sweep, ranked."""
    get_sweep(session, principal, sweep_id)
    session.execute(
        update(Job)
        .where(Job.sweep_id == sweep_id, Job.status == JobStatus.queued.value)
        .values(status=JobStatus.cancelled.value, cancel_requested=True, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Job)
        .where(Job.sweep_id == sweep_id, Job.status == JobStatus.running.value)
        .values(cancel_requested=True)
        .execution_options(synchronize_session=False)
    )
    session.expire_all()
    return rank(session, principal, sweep_id)


def delete_sweep(session: Session, principal: Principal, sweep_id: str) -> None:
    """Remove a sweep whose jobs have all ended, and its jobs with everything recorded of
    them (ON DELETE CASCADE from the sweep to its jobs, and on from each job). Refused
    while any of its jobs, or an evaluation of one, is queued or running: cancel it first.
    An ended job never starts again, so nothing can begin between the check and the delete."""
    sweep = get_sweep(session, principal, sweep_id)
    under_way = (JobStatus.queued.value, JobStatus.running.value)
    members = session.execute(select(Job.id, Job.status).where(Job.sweep_id == sweep_id)).all()
    busy = [job_id for job_id, status in members if status in under_way]
    busy += session.execute(
        select(Evaluation.id)
        .join(Job, Job.id == Evaluation.job_id)
        .where(Job.sweep_id == sweep_id, Evaluation.status.in_(under_way))
    ).scalars()
    if busy:
        raise SweepNotDeletable(sweep_id, busy)
    session.execute(delete(Sweep).where(Sweep.id == sweep_id).execution_options(synchronize_session=False))
    # what the session holds of the deleted rows is gone from the database
    for job_id, _ in members:
        job = session.identity_map.get(identity_key(Job, job_id))
        if job is not None:
            session.expunge(job)
    session.expunge(sweep)


def _point_spec(session: Session, principal: Principal, document: dict[str, Any], index: int, point: Point) -> JobSpec:
    where = f"points[{index}]"
    described = ", ".join(f"{path}={value!r}" for path, value in point.items())
    try:
        spec = JobSpec.model_validate(apply(document, point))
        dataset_jobs.check_training(session, principal, spec)
    except InvalidInput as error:
        raise error.inside(where, f" (at {described})") from None
    except EngineError as error:
        raise InvalidInput.of(error).inside(where, f" (at {described})") from None
    except ValidationError as error:
        first = error.errors()[0]
        raise InvalidInput(
            f"{where}.{field_path(('body', *first['loc']))}", f"{first['msg']} (at {described})"
        ) from None
    return spec


def _final_value(status: str, logs: dict[str, Any] | None, metric: str) -> float | None:
    if status != JobStatus.succeeded.value or not logs:
        return None
    return finite_or_none(logs.get(metric))


def _job_name(sweep_name: str | None, point: Point) -> str:
    label = ", ".join(f"{path}={value}" for path, value in point.items())
    return f"{sweep_name or 'sweep'} [{label}]"[:NAME_MAX_LENGTH]
