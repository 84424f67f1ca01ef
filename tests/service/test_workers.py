"""The workers registry: a worker records itself, beats, is shown lost when silent and
stopped when it said goodbye; a queued job says why it waits when no worker can take it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session

from tests.service.conftest import job_spec
from tests.support.keys import TEST_PRINCIPAL
from trainq.services.db.models import Job, Worker, utcnow
from trainq.services.jobs import service as jobs
from trainq.services.jobs import submit as submitting
from trainq.services.jobs.states import Device
from trainq.services.workers import registry
from trainq.services.workers.device import WorkerDevice
from trainq.services.workers.registry import WorkerStatus

GPU = WorkerDevice(Device.gpu, "NVIDIA H100", 80 * 2**30, "torch")
CPU = WorkerDevice(Device.cpu, "x86_64 CPU x2", 8 * 2**30, "numpy")


def submit_for(session: Session, device: Device) -> Job:
    job, _ = submitting.store(session, TEST_PRINCIPAL, job_spec(), name=None, device=device, idempotency_key=None)
    return job


def record(session: Session, name: str, device: WorkerDevice) -> None:
    registry.register(session, name=name, host="host", pid=1, device=device, concurrency=1)


def age(session: Session, name: str, seconds: float) -> None:
    session.execute(
        update(Worker).where(Worker.name == name).values(heartbeat_at=utcnow() - timedelta(seconds=seconds))
    )


def test_a_worker_is_online_while_it_beats_lost_when_silent_and_stopped_after_goodbye(session: Session) -> None:
    record(session, "a@host", CPU)
    record(session, "b@host", GPU)
    record(session, "c@host", CPU)
    age(session, "b@host", 31)
    age(session, "c@host", 31)
    assert registry.heartbeat(session, "c@host")
    registry.stopped(session, "a@host")

    states = {state.worker.name: state for state in registry.list_workers(session, TEST_PRINCIPAL, lost_after=30)}
    assert {name: state.status for name, state in states.items()} == {
        "a@host": WorkerStatus.stopped,
        "b@host": WorkerStatus.lost,
        "c@host": WorkerStatus.online,
    }
    assert (states["b@host"].worker.device_name, states["b@host"].worker.array_library) == ("NVIDIA H100", "torch")
    assert registry.online_kinds(session, lost_after=30) == {Device.cpu}
    assert not registry.heartbeat(session, "never@host")


def test_a_restarted_worker_takes_its_row_over_online_again(session: Session) -> None:
    record(session, "a@host", CPU)
    registry.stopped(session, "a@host")
    record(session, "a@host", GPU)
    (state,) = registry.list_workers(session, TEST_PRINCIPAL, lost_after=30)
    assert (state.status, state.worker.device_kind) == (WorkerStatus.online, "gpu")


def test_a_workers_current_jobs_are_the_running_jobs_it_holds(session: Session, submit: Callable[..., Job]) -> None:
    record(session, "a@host", CPU)
    held, other, _queued = submit(), submit(), submit()
    jobs.claim(session, held.id, worker="a@host:123", lease_seconds=60)
    jobs.claim(session, other.id, worker="ab@host:7", lease_seconds=60)
    (state,) = registry.list_workers(session, TEST_PRINCIPAL, lost_after=30)
    assert state.current_jobs == [held.id]


def test_a_queued_job_says_why_it_waits_only_when_no_online_worker_can_take_it(session: Session) -> None:
    gpu_job, cpu_job, auto_job = (submit_for(session, device) for device in (Device.gpu, Device.cpu, Device.auto))
    assert registry.waiting_reason(gpu_job, set()) == "no worker online"
    assert registry.waiting_reason(auto_job, set()) == "no worker online"
    assert registry.waiting_reason(gpu_job, {Device.cpu}) == "no GPU worker online"
    assert registry.waiting_reason(cpu_job, {Device.gpu}) == "no CPU worker online"
    assert registry.waiting_reason(auto_job, {Device.gpu}) is None
    assert registry.waiting_reason(gpu_job, {Device.gpu}) is None
    jobs.claim(session, gpu_job.id, worker="g@host:1", lease_seconds=60)
    assert registry.waiting_reason(jobs.get_job(session, TEST_PRINCIPAL, gpu_job.id), set()) is None


def test_a_worker_claims_only_jobs_of_the_devices_it_serves(session: Session) -> None:
    gpu_job = submit_for(session, Device.gpu)
    assert (
        jobs.claim(session, gpu_job.id, worker="c@host:1", lease_seconds=60, devices={Device.cpu, Device.auto}) is None
    )
    assert jobs.get_job(session, TEST_PRINCIPAL, gpu_job.id).status == "queued"
    assert jobs.claim(session, gpu_job.id, worker="g@host:1", lease_seconds=60, devices={Device.gpu, Device.auto})
