"""The evaluation task: `model.evaluate` of a finished job over an uploaded dataset.
The logic lives in services.datasets.evaluations."""

from __future__ import annotations

import os

from celery import Celery, Task, shared_task

from trainq.services.datasets import evaluations
from trainq.services.datasets.storage import storage_for
from trainq.services.db.session import session_factory

RUN_EVALUATION = "trainq.run_evaluation"


@shared_task(name=RUN_EVALUATION, bind=True, ignore_result=True)
def run_evaluation(self: Task, evaluation_id: str) -> None:
    settings = self.app.settings  # worker.app.TrainqCelery
    worker = f"{self.request.hostname}:{os.getpid()}"
    evaluations.run(session_factory(settings), storage_for(settings), evaluation_id, worker=worker, settings=settings)


def send_evaluation(app: Celery, evaluation_id: str) -> None:
    """Put the evaluation's id on the queue every worker takes from (any worker can run
    one); the requeue sweep re-sends a lost one the same way."""
    from trainq.worker.app import QUEUE

    app.send_task(RUN_EVALUATION, args=[evaluation_id], queue=QUEUE)
