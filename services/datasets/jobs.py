"""Jobs on uploaded datasets: checked at submit from their metadata, trained memory-mapped.

At submit, the engine's own checks run on stand-in arrays of the dataset's shape (a
broadcast zero: no memory, no I/O), so a dataset that does not fit the model's
inputShape, or targets that do not fit the loss, are refused before anything is stored.
On the worker, x and y are `np.load(..., mmap_mode="r")`: the engine reads the rows of
each batch and the operating system pages them in and out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from trainq.services.datasets import service as datasets
from trainq.services.datasets.storage import Storage
from trainq.services.db.models import Dataset, JobDataset
from trainq.services.engine import InvalidData, validate_training
from trainq.services.errors import DatasetDeleted, InvalidInput, NotFound
from trainq.services.tenants.principal import EVERYONE, Principal

if TYPE_CHECKING:
    from trainq.services.spec import JobSpec

Arrays = tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]
TRAINING, VALIDATION = "training", "validation"


def check_training(session: Session, principal: Principal, spec: JobSpec) -> None:
    """Everything the engine would refuse, refused now: for a dataset, from its shapes,
    the fault named `data.datasetId` (or `data.validationDatasetId`); another tenant's
    dataset is no dataset to `principal`."""
    if not spec.data.uses_dataset:
        validate_training(spec.to_training_config(), *spec.arrays())
        return
    # held until the submit commits: a delete waits for it, or went first and is seen
    x, y = stand_ins(dataset_named(session, principal, spec.data.dataset_id, "data.datasetId", held=True))
    validation = None
    if spec.data.validation_dataset_id is not None:
        validation = stand_ins(
            dataset_named(session, principal, spec.data.validation_dataset_id, "data.validationDatasetId", held=True)
        )
    try:
        validate_training(spec.to_training_config(), x, y, validation)
    except InvalidData as error:
        field = "data.validationDatasetId" if error.field.startswith("data.validationData") else "data.datasetId"
        raise InvalidInput.of(error, field) from None


def record_use(session: Session, job_id: str, spec: JobSpec) -> None:
    """Note the datasets a job reads, so they cannot be deleted under it."""
    uses = {
        TRAINING: (spec.data.dataset_id, "data.datasetId"),
        VALIDATION: (spec.data.validation_dataset_id, "data.validationDatasetId"),
    }
    for role, (dataset_id, field) in uses.items():
        if dataset_id is None:
            continue
        session.add(JobDataset(job_id=job_id, role=role, dataset_id=dataset_id))
        try:
            session.flush()  # one row at a time: a failure names its own field
        except IntegrityError:
            # not once check_training held the dataset; should a path skip that, still a 409 naming it
            raise DatasetDeleted(dataset_id, field) from None


def training_arrays(session: Session, storage: Storage, spec: JobSpec) -> Arrays:
    """x, y and the validation data for the worker: inline, or memory-mapped from storage."""
    if not spec.data.uses_dataset:
        return spec.arrays()
    # the worker trains on what the job names: the API checked it was the job's tenant's
    x, y = mapped(storage, dataset_named(session, EVERYONE, spec.data.dataset_id, "data.datasetId"))
    validation = None
    if spec.data.validation_dataset_id is not None:
        validation = mapped(
            storage, dataset_named(session, EVERYONE, spec.data.validation_dataset_id, "data.validationDatasetId")
        )
    return x, y, validation


def mapped(storage: Storage, dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.load(storage.local_path(dataset.x_key), mmap_mode="r"),
        np.load(storage.local_path(dataset.y_key), mmap_mode="r"),
    )


def dataset_named(
    session: Session, principal: Principal, dataset_id: str | None, field: str, *, held: bool = False
) -> Dataset:
    """The dataset a request names at `field` (none, or one `principal` may not see: an
    InvalidInput there); `held`: held (`services.datasets.service.hold_dataset`) until the
    transaction ends."""
    assert dataset_id is not None
    find = datasets.hold_dataset if held else datasets.get_dataset
    try:
        return find(session, principal, dataset_id, field)
    except NotFound:
        raise InvalidInput(field, f"no dataset {dataset_id}; upload one with POST /v1/datasets") from None


def stand_ins(dataset: Dataset) -> tuple[np.ndarray, np.ndarray]:
    zero = np.zeros((1, 1), dtype=np.float32)
    return (
        np.broadcast_to(zero, (dataset.rows, dataset.x_columns)),
        np.broadcast_to(zero, (dataset.rows, dataset.y_columns)),
    )
