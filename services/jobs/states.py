"""Where a job is in its life, and where it may run."""

from __future__ import annotations

from enum import StrEnum

from trainq.services.leases.states import WorkStatus

# A job is leased work (services.leases): its status is that of leased work. Cancelled: by a
# person, never started if it was queued, else stopped at the batch its worker learned of it in.
JobStatus = WorkStatus


class Device(StrEnum):
    cpu = "cpu"
    gpu = "gpu"
    # the worker picks: a GPU when its array library sees one, else the CPU
    auto = "auto"
