"""The one task: train a job, named by its id. The logic lives in services.training."""

from __future__ import annotations

import logging
import os

from celery import Task, shared_task
from celery.exceptions import Reject

from trainq.services.db.session import DATABASE_UNAVAILABLE, session_factory
from trainq.services.jobs.live import Publisher
from trainq.services.log_format import about_job
from trainq.services.queue import RUN_JOB, send_job
from trainq.services.training import run_job as run_training_job
from trainq.worker.shutdown import STOPPING

log = logging.getLogger(__name__)


@shared_task(name=RUN_JOB, bind=True, ignore_result=True)
def run_job(self: Task, job_id: str) -> None:
    settings = self.app.settings  # worker.app.WorkerCelery
    # the node name (name@host) and this pool process: which worker ran which attempt
    worker = f"{self.request.hostname}:{os.getpid()}"
    try:
        with about_job(job_id):
            outcome = run_training_job(
                session_factory(settings),
                job_id,
                worker=worker,
                settings=settings,
                device=self.app.device,
                # event streams learn of each change through Redis; the embedded default's poll the database
                changed=Publisher(settings.redis_url) if settings.redis_url else None,
                stopping=STOPPING,
            )
    except DATABASE_UNAVAILABLE as error:
        # Back on the queue rather than acknowledged and lost (acks_late makes Reject
        # requeue it): the next delivery waits for the database again, and the job
        # starts as soon as the database answers.
        raise Reject(f"the database is unreachable: {error}", requeue=True) from error
    if outcome.handed_back is not None:
        try:
            send_job(self.app, job_id, outcome.handed_back)
        except Exception:
            log.exception("job %s: sending it again after its hand-back failed; the requeue sweep will", job_id)
