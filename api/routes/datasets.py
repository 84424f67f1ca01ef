"""/v1/datasets: upload (streamed to storage), list, read, delete.

The upload route is `async`: it reads the body as it arrives and hands each chunk to a
thread (hashing and writing), so neither the whole file nor a blocked event loop is
ever the price of a large upload. The conversion to `.npy` runs in a thread too.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from trainq.api.body import drain
from trainq.api.deps import IdListingDep, PrincipalDep, SessionDep, SettingsDep
from trainq.api.errors import error_responses
from trainq.api.routes.delete import delete_route
from trainq.api.schemas import DatasetPage, DatasetRead
from trainq.services.datasets import service as datasets
from trainq.services.datasets.formats import FORMATS, Columns, sniff
from trainq.services.datasets.storage import storage_for
from trainq.services.datasets.upload import Receiver, format_of
from trainq.services.errors import InvalidInput, PayloadTooLarge

router = APIRouter(prefix="/v1/datasets", tags=["datasets"], responses=error_responses(404, 409, 413, 422))

DatasetId = Annotated[str, Path(max_length=64, description="The dataset's id, as POST /v1/datasets answered it")]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": DatasetRead, "description": "The same content was uploaded before: that dataset"},
    },
    summary="Upload a dataset: CSV, .npy, .npz, JSON or Parquet, as a raw body or a multipart file",
)
async def upload_dataset(
    request: Request,
    response: Response,
    settings: SettingsDep,
    principal: PrincipalDep,
    format_: Annotated[
        str | None,
        Query(
            alias="format",
            description=f"One of {', '.join(FORMATS)}; "
            "default: from the Content-Type, the file name or the first bytes",
        ),
    ] = None,
    x_columns: Annotated[
        str | None,
        Query(
            alias="xColumns",
            description=(
                "Comma-separated feature columns (CSV and Parquet: names; .npy: indices); default: all but the targets"
            ),
        ),
    ] = None,
    y_columns: Annotated[
        str | None, Query(alias="yColumns", description=("Comma-separated target columns; default: the last column"))
    ] = None,
    name: Annotated[str | None, Query(max_length=200, description="A label for people")] = None,
) -> DatasetRead:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > settings.max_dataset_bytes:
        raise PayloadTooLarge("body", f"is larger than the dataset limit of {settings.max_dataset_bytes} bytes")
    folder = settings.home.resolve() / "uploads" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    try:
        receiver = Receiver(folder, request.headers.get("content-type"), settings.max_dataset_bytes)
        try:
            await _receive(request, receiver, settings.drain_bytes)
        finally:
            receiver.close()
        fields = receiver.fields
        fmt = format_ or fields.get("format") or format_of(receiver.raw_media_type, receiver.filename)
        fmt = fmt or sniff(receiver.file.path) or "csv"
        if fmt not in FORMATS:
            where = "query.format" if format_ is not None else "format"
            raise InvalidInput(where, f"must be one of {', '.join(FORMATS)}, not {fmt!r}")
        upload = datasets.Upload(
            path=receiver.file.path,
            sha256=receiver.file.sha256,
            byte_size=receiver.file.size,
            format=fmt,
            columns=Columns(
                _names(x_columns or fields.get("xColumns")),
                _names(y_columns or fields.get("yColumns")),
                # a service names the option where the request gave it: the query, or a multipart field
                x_field="query.xColumns" if x_columns is not None else "xColumns",
                y_field="query.yColumns" if y_columns is not None else "yColumns",
            ),
            name=name or fields.get("name"),
        )
        dataset, created = await run_in_threadpool(
            datasets.ingest,
            request.app.state.session_factory,
            principal,
            storage_for(settings),
            upload,
            max_json_bytes=settings.max_json_dataset_bytes,
        )
    finally:
        await run_in_threadpool(datasets.discard_staging, folder)
    if not created:
        response.status_code = status.HTTP_200_OK
    return DatasetRead.of(dataset)


@router.get("", summary="List datasets, newest first")
def list_datasets(session: SessionDep, listing: IdListingDep) -> DatasetPage:
    found = datasets.list_datasets(
        session, listing.principal, cursor=listing.cursor, limit=listing.limit, id_prefix=listing.id_prefix
    )
    return DatasetPage.of(found, DatasetRead.of)


@router.get(
    "/{dataset_id}",
    summary="A dataset: rows, shapes, sha256 and per-column min, max, mean, std",
)
def get_dataset(dataset_id: DatasetId, session: SessionDep, principal: PrincipalDep) -> DatasetRead:
    return DatasetRead.of(datasets.get_dataset(session, principal, dataset_id))


@delete_route(
    router,
    "/{dataset_id}",
    summary="Delete a dataset and its bytes (409 while a queued or running job uses it)",
)
def delete_dataset(dataset_id: DatasetId, session: SessionDep, principal: PrincipalDep, settings: SettingsDep) -> None:
    datasets.delete_dataset(session, principal, storage_for(settings), dataset_id)


async def _receive(request: Request, receiver: Receiver, drain_bytes: int) -> None:
    stream = request.stream()
    try:
        async for chunk in stream:
            if chunk:
                await run_in_threadpool(receiver.feed, chunk)
        await run_in_threadpool(receiver.finish)
    except PayloadTooLarge:
        await drain(stream, drain_bytes)
        raise


def _names(value: str | None) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())
