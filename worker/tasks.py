"""The one task: train a job, named by its id. The logic lives in services.training."""

from __future__ import annotations

import os

from celery import Task, shared_task

from trainq.services.db.session import session_factory
from trainq.services.jobs.live import Publisher
from trainq.services.queue import RUN_JOB
from trainq.services.training import run_job as run_training_job


@shared_task(name=RUN_JOB, bind=True, ignore_result=True)
def run_job(self: Task, job_id: str) -> None:
    settings = self.app.settings  # worker.app.WorkerCelery
    # the node name (name@host) and this pool process: which worker ran which attempt
    worker = f"{self.request.hostname}:{os.getpid()}"
    run_training_job(
        session_factory(settings),
        job_id,
        worker=worker,
        settings=settings,
        device=self.app.device,
        # event streams learn of each change through Redis; the embedded default's poll the database
        changed=Publisher(settings.redis_url) if settings.redis_url else None,
    )
