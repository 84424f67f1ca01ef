"""The dataset registry: store an upload once, read it, list it, delete it when unused.

Functions take the session first and never commit (as `services.jobs.service`), except
`ingest`, which runs the long conversion outside any transaction and commits the new
row in one scope of its own. Bytes live in `Storage`; rows name their storage keys.
"""

from __future__ import annotations

import hashlib
import shutil
import uuid
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from trainq.services import paging
from trainq.services.datasets import formats
from trainq.services.datasets.storage import Storage
from trainq.services.db.models import NAME_MAX_LENGTH, Dataset, Evaluation, Job, JobDataset, utcnow
from trainq.services.db.session import after_commit, session_scope
from trainq.services.errors import DatasetInUse, DatasetNotFound, InvalidInput
from trainq.services.leases.states import ACTIVE
from trainq.services.tenants import quotas
from trainq.services.tenants.principal import Principal


@dataclass(frozen=True)
class Upload:
    """A file received whole into a staging folder, with what the request said about it."""

    path: Path
    sha256: str
    byte_size: int
    format: str
    columns: formats.Columns
    name: str | None

    @property
    def content_key(self) -> str:
        """Same bytes read the same way: same dataset."""
        described = f"{self.sha256}\n{self.format}\n{formats.canonical_columns(self.columns)}"
        return hashlib.sha256(described.encode()).hexdigest()


def ingest(
    factory: sessionmaker[Session], principal: Principal, storage: Storage, upload: Upload, *, max_json_bytes: int
) -> tuple[Dataset, bool]:
    """The dataset of `upload`, converted and stored as the principal's tenant's; False when
    the tenant stored the same content before. Past the tenant's max_dataset_bytes: 429,
    checked before the conversion and again as the row is stored."""
    if upload.name is not None and len(upload.name) > NAME_MAX_LENGTH:
        raise InvalidInput("name", f"at most {NAME_MAX_LENGTH} characters")
    with session_scope(factory) as session:
        existing = _by_content(session, principal.tenant, upload.content_key)
        if existing is None:
            quotas.check_dataset_bytes(session, principal.tenant, upload.byte_size)
    if existing is not None:
        return existing, False
    dataset_id = str(uuid.uuid4())
    staging = upload.path.parent
    x_path, y_path = staging / "x.npy", staging / "y.npy"
    parsed = formats.convert(upload.path, upload.format, upload.columns, x_path, y_path, max_json_bytes=max_json_bytes)
    x_key, y_key = f"datasets/{dataset_id}/x.npy", f"datasets/{dataset_id}/y.npy"
    dataset = Dataset(
        id=dataset_id,
        tenant=principal.tenant,
        name=upload.name,
        format=upload.format,
        rows=parsed.rows,
        x_columns=len(parsed.x_names),
        y_columns=len(parsed.y_names),
        dtype="float32",
        byte_size=upload.byte_size,
        sha256=upload.sha256,
        content_key=upload.content_key,
        summary={"columns": parsed.summary},
        x_key=x_key,
        y_key=y_key,
        created_at=utcnow(),
    )
    try:
        storage.put(x_path, x_key)
        storage.put(y_path, y_key)
        with session_scope(factory) as session:
            quotas.check_dataset_bytes(session, principal.tenant, upload.byte_size)
            session.add(dataset)
    except IntegrityError:
        # the same content uploaded twice at once: the other upload's row stands
        delete_bytes(storage, dataset)
        with session_scope(factory) as session:
            existing = _by_content(session, principal.tenant, upload.content_key)
        if existing is None:
            raise
        return existing, False
    except BaseException:
        # no row, no bytes: nothing half-written stays in storage
        delete_bytes(storage, dataset)
        raise
    return dataset, True


def get_dataset(session: Session, principal: Principal, dataset_id: str, field: str = "path.dataset_id") -> Dataset:
    """The dataset, if `principal` may see it; DatasetNotFound otherwise, as if there were none."""
    return principal.find(session, Dataset, dataset_id, DatasetNotFound(dataset_id, field))


def list_datasets(
    session: Session, principal: Principal, *, cursor: str | None, limit: int, id_prefix: str | None = None
) -> tuple[list[Dataset], str | None]:
    """A page of datasets, newest first, and the next page's cursor (None on the last)."""
    query = select(Dataset).where(principal.visible(Dataset.tenant))
    if id_prefix is not None:
        query = query.where(Dataset.id.startswith(id_prefix, autoescape=True))
    return paging.page(session, query, Dataset, cursor=cursor, limit=limit)


def users(session: Session, dataset_id: str) -> list[str]:
    """Ids of the queued or running jobs and evaluations that read the dataset."""
    active = [status.value for status in ACTIVE]
    jobs = session.execute(
        select(Job.id)
        .join(JobDataset, JobDataset.job_id == Job.id)
        .where(JobDataset.dataset_id == dataset_id, Job.status.in_(active))
    ).scalars()
    evaluations = session.execute(
        select(Evaluation.id).where(Evaluation.dataset_id == dataset_id, Evaluation.status.in_(active))
    ).scalars()
    return [*jobs, *evaluations]


def hold_dataset(
    session: Session, principal: Principal, dataset_id: str, field: str = "path.dataset_id", *, exclusive: bool = False
) -> Dataset:
    """The dataset, locked until the transaction ends: shared by each job or evaluation
    being stored that names it, exclusive for its delete. So either the delete waits for
    the submit to commit and then sees the job that uses it (409), or the submit waits for
    the delete and finds no dataset; never a job stored on a dataset deleted under it."""
    query = select(Dataset).where(Dataset.id == dataset_id).execution_options(populate_existing=True)
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has no row locks, and its reads run outside any transaction. A write that
        # changes nothing takes the database's one write lock now, so the whole transaction
        # runs after, or before, any other writer's: a delete, or a submit.
        session.execute(
            update(Dataset)
            .where(Dataset.id == dataset_id)
            .values(rows=Dataset.rows)
            .execution_options(synchronize_session=False)
        )
    else:
        query = query.with_for_update(read=not exclusive)
    dataset = session.execute(query).scalar_one_or_none()
    if dataset is None or not principal.sees(dataset.tenant):
        raise DatasetNotFound(dataset_id, field)
    return dataset


def delete_dataset(session: Session, principal: Principal, storage: Storage, dataset_id: str) -> None:
    """Remove the dataset's row, refused (DatasetInUse) while queued or running work reads
    it, and its bytes once that is committed: should removing them fail, nothing names
    them any more."""
    dataset = hold_dataset(session, principal, dataset_id, exclusive=True)
    in_use = users(session, dataset_id)
    if in_use:
        raise DatasetInUse(dataset_id, in_use)
    session.delete(dataset)
    session.flush()
    after_commit(session, partial(delete_bytes, storage, dataset))


def discard_staging(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def delete_bytes(storage: Storage, dataset: Dataset) -> None:
    storage.delete(dataset.x_key)
    storage.delete(dataset.y_key)


def _by_content(session: Session, tenant: str, content_key: str) -> Dataset | None:
    query = select(Dataset).where(Dataset.tenant == tenant, Dataset.content_key == content_key)
    return session.execute(query).scalar_one_or_none()
