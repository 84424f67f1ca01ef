"""The evaluation task: `model.evaluate` of a finished job over an uploaded dataset.
The logic lives in services.evaluations."""

from __future__ import annotations

import os

from celery import Task, shared_task
from celery.exceptions import Reject

from trainq.services.datasets.storage import storage_for
from trainq.services.db.session import DATABASE_UNAVAILABLE, session_factory
from trainq.services.evaluations import evaluate
from trainq.services.queue import RUN_EVALUATION
from trainq.worker.shutdown import STOPPING


@shared_task(name=RUN_EVALUATION, bind=True, ignore_result=True)
def run_evaluation(self: Task, evaluation_id: str) -> None:
    settings = self.app.settings  # worker.app.WorkerCelery
    worker = f"{self.request.hostname}:{os.getpid()}"
    try:
        evaluate.run(
            session_factory(settings),
            storage_for(settings),
            evaluation_id,
            worker=worker,
            settings=settings,
            stopping=STOPPING,
        )
    except DATABASE_UNAVAILABLE as error:
        # back on the queue, as a job's delivery (worker.tasks)
        raise Reject(f"the database is unreachable: {error}", requeue=True) from error
