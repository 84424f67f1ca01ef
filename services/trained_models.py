"""Evaluate and predict with a finished job's model, built once and kept in an LRU cache.

A succeeded job's weights never change, so its engine Model, keyed by the job id, stays
valid until the job is deleted: a query costs the forward pass and a look-up of the job's
id (another API process may have deleted it), not a read of its weights and a rebuild.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
from sqlalchemy.orm import Session

from trainq.services.datasets.storage import Storage
from trainq.services.engine import Model
from trainq.services.errors import InvalidInput, JobNotFound
from trainq.services.evaluations.evaluate import evaluate_here
from trainq.services.jobs import service as jobs
from trainq.services.jobs.trained import trained_model
from trainq.services.spec import Matrix, samples
from trainq.services.tenants.principal import EVERYONE, Principal


class TrainedModels:
    """The engine Models of finished jobs, the `size` most recently used; thread-safe."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._models: OrderedDict[str, Model] = OrderedDict()
        self._lock = threading.Lock()

    def model(self, session: Session, principal: Principal, job_id: str) -> Model:
        """The job's trained model, if `principal` may see the job; JobNotFound, JobHasNoWeights
        (409) while it has none. A cached model is still checked against its job's tenant."""
        with self._lock:
            model = self._models.get(job_id)
            if model is not None:
                self._models.move_to_end(job_id)
        if model is not None:
            if jobs.exists(session, principal, job_id):
                return model
            if not jobs.exists(session, EVERYONE, job_id):
                self.forget(job_id)
            raise JobNotFound(job_id)
        # Built outside the lock, so one slow load does not hold up queries on cached jobs;
        # two threads loading the same job at once build equal models, and one is kept.
        model = trained_model(session, principal, job_id)
        with self._lock:
            self._models[job_id] = model
            self._models.move_to_end(job_id)
            while len(self._models) > self.size:
                self._models.popitem(last=False)
        return model

    def forget(self, job_id: str) -> None:
        """Drop the job's model: the job was deleted."""
        with self._lock:
            self._models.pop(job_id, None)

    def evaluate(
        self,
        session: Session,
        principal: Principal,
        job_id: str,
        *,
        x: Matrix | None,
        y: Matrix | None,
        dataset_id: str | None,
        batch_size: int,
        storage: Storage,
        max_bytes: int,
    ) -> dict[str, float]:
        """`model.evaluate` on `x` and `y`, or on the uploaded dataset `dataset_id` if it
        holds at most `max_bytes` (`evaluate_here`): {"loss": ..., "<metric>": ...}.
        InvalidInput names x, y or datasetId."""
        if dataset_id is not None:
            if x is not None or y is not None:
                raise InvalidInput("datasetId", "give x and y, or datasetId, not both")
            model = self.model(session, principal, job_id)
            return evaluate_here(session, principal, storage, model, dataset_id, batch_size, max_bytes=max_bytes)
        if x is None or y is None:
            raise InvalidInput("x" if x is None else "y", "Field required (or datasetId instead of x and y)")
        model = self.model(session, principal, job_id)
        return model.evaluate(samples(x, "x"), samples(y, "y"), batch_size)

    def predict(self, session: Session, principal: Principal, job_id: str, x: Matrix, batch_size: int) -> np.ndarray:
        """`model.predict(x)`: float32 (rows, units)."""
        model = self.model(session, principal, job_id)
        return model.predict(samples(x, "x"), batch_size)

    def __len__(self) -> int:
        return len(self._models)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._models
