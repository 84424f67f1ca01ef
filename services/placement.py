"""Where a job's message goes: a Celery queue per device kind, at a priority.

    job device   queue        consumed by
    cpu          trainq.cpu   CPU workers
    gpu          trainq.gpu   GPU workers
    auto         trainq       every worker, so whichever worker is free first takes it

A worker consumes its own kind's queue and the shared `trainq` queue, one message at a
time (prefetch 1, acks late): a free worker pops whichever of its queues holds a message,
so an `auto` job goes to the first worker of any kind that frees up, and a `gpu` job waits
on `trainq.gpu` until a GPU worker is there to take it. The claim in the database checks
the kind again (`devices_served`), so a message that reached the wrong worker runs nothing.

Fairness is by priority. A sweep's jobs are sent at SWEEP_PRIORITY, every other job at
SINGLE_PRIORITY, and a job whose worker died, sent again by the requeue sweep, at
RESUMED_PRIORITY, above both: it has run already (its checkpoint is waiting), and must
not queue again behind hundreds of jobs submitted since it started. On Redis, kombu
keeps one list per priority step and a worker pops the higher-priority lists of all its
queues first, so a job submitted after a 500-job sweep is the next one a worker takes,
while an otherwise idle cluster still runs the sweep on every worker (a per-sweep cap
would leave workers idle). The price: a steady stream of single jobs holds a sweep back,
which is the right way round for batch work. (Celery's SQLAlchemy transport, the
one-machine default, has no priorities: there it is FIFO.)
"""

from __future__ import annotations

from dataclasses import dataclass

from trainq.services.jobs.states import Device

SHARED_QUEUE = "trainq"
QUEUES = {Device.cpu: "trainq.cpu", Device.gpu: "trainq.gpu", Device.auto: SHARED_QUEUE}
# kombu's Redis transport takes 0 first; its priority steps are 0, 3, 6 and 9
RESUMED_PRIORITY = 0
SINGLE_PRIORITY = 3
SWEEP_PRIORITY = 9


@dataclass(frozen=True)
class Route:
    queue: str
    priority: int


def route(device: str, *, in_sweep: bool, resumed: bool = False) -> Route:
    """The queue and priority of a job's message; `resumed`: its worker died mid-fit."""
    priority = RESUMED_PRIORITY if resumed else SWEEP_PRIORITY if in_sweep else SINGLE_PRIORITY
    return Route(QUEUES[Device(device)], priority)


def queues_served(kind: Device) -> list[str]:
    """The queues a worker of this kind (cpu or gpu) consumes: its own, then the shared one."""
    return [QUEUES[_kind(kind)], SHARED_QUEUE]


def devices_served(kind: Device) -> frozenset[Device]:
    """The job devices a worker of this kind may claim."""
    return frozenset({_kind(kind), Device.auto})


def _kind(kind: Device) -> Device:
    kind = Device(kind)
    if kind is Device.auto:
        raise ValueError("a worker is a cpu or a gpu worker, never auto")
    return kind
