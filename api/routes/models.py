"""/v1/models: store a model as tf.js saves one (`tf.io.http`), list, read, delete, and
serve it back to tf.js (model.json, weights.bin). A job starts from one with
`"model": {"from": "<modelId>"}`."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from starlette.datastructures import UploadFile

from trainq.api import etag
from trainq.api.deps import ListingDep, PrincipalDep, SessionDep
from trainq.api.errors import error_responses
from trainq.api.routes.delete import delete_route
from trainq.api.schemas import ModelPage, ModelRead
from trainq.services.errors import InvalidInput
from trainq.services.models import service as models

router = APIRouter(prefix="/v1/models", tags=["models"], responses=error_responses(404, 413, 415, 422))

ModelId = Annotated[str, Path(max_length=64, description="The model's id, as POST /v1/models answered it")]
# the multipart form tf.io.http sends (tfjs-core/src/io/http.ts)
MODEL_JSON_FIELD = "model.json"
WEIGHTS_FIELD = "model.weights.bin"
UPLOAD_DESCRIPTION = f"""Either the multipart form `model.save(tf.io.http('<base>/v1/models'))` sends (files
`{MODEL_JSON_FIELD}` and `{WEIGHTS_FIELD}`), or `application/json`: the model.json document with the
weights file base64-encoded as `weightData`. Sequential models of Dense layers only; anything else is
a 422 naming the layer or field, and nothing is stored. Its trainingConfig (model.save with
`{{includeOptimizer: true}}`) becomes the model's compile."""


@dataclass(frozen=True)
class Upload:
    document: Any  # model.json, parsed
    weights: bytes
    weights_field: str  # where the weights came from, for errors


async def read_upload(request: Request) -> Upload:
    """The model.json and weights of a multipart form or of a JSON body."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        form = await request.form()
        parts = {}
        for field in (MODEL_JSON_FIELD, WEIGHTS_FIELD):
            part = form.get(field)
            if part is None:
                raise InvalidInput(field, f"Field required: the form holds {', '.join(form.keys()) or 'no field'}")
            parts[field] = await part.read() if isinstance(part, UploadFile) else part.encode()
        return Upload(_json(parts[MODEL_JSON_FIELD], MODEL_JSON_FIELD), parts[WEIGHTS_FIELD], WEIGHTS_FIELD)
    if content_type == "application/json":
        document = _json(await request.body(), "body")
        data = document.pop("weightData", None) if isinstance(document, dict) else None
        if not isinstance(data, str):
            raise InvalidInput("weightData", "Field required: the weights file, base64-encoded")
        try:
            weights = base64.b64decode(data, validate=True)
        except binascii.Error as error:
            raise InvalidInput("weightData", f"is not base64 ({error})") from None
        return Upload(document, weights, "weightData")
    raise InvalidInput(
        "header.Content-Type",
        f"is {content_type or 'missing'}; send multipart/form-data (as tf.io.http does) or application/json",
    )


def _json(data: bytes, field: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput(field, f"is not valid JSON ({error})") from None


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Store a model as tf.js saves it: model.save(tf.io.http('<base>/v1/models'))",
    description=UPLOAD_DESCRIPTION,
)
def upload_model(
    upload: Annotated[Upload, Depends(read_upload)],
    session: SessionDep,
    principal: PrincipalDep,
    name: Annotated[str | None, Query(max_length=200, description="A label for people")] = None,
) -> ModelRead:
    return ModelRead.of(
        models.upload(
            session, principal, upload.document, upload.weights, name=name, weights_field=upload.weights_field
        )
    )


@router.get("", summary="List models, newest first")
def list_models(session: SessionDep, listing: ListingDep) -> ModelPage:
    return ModelPage.of(
        models.list_models(session, listing.principal, cursor=listing.cursor, limit=listing.limit), ModelRead.of
    )


@router.get("/{model_id}", summary="A model: layers, compile, size")
def get_model(model_id: ModelId, session: SessionDep, principal: PrincipalDep) -> ModelRead:
    return ModelRead.of(models.get_model(session, principal, model_id))


@delete_route(router, "/{model_id}", summary="Delete a model (the jobs started from it keep their copy)")
def delete_model(model_id: ModelId, session: SessionDep, principal: PrincipalDep) -> None:
    models.delete_model(session, principal, model_id)


@etag.file_route(
    router,
    "/{model_id}/model.json",
    etag.MODEL_JSON,
    summary="The model as tf.js loads it: tf.loadLayersModel('<this URL>')",
)
def get_model_json(model_id: ModelId, request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    document, _ = models.model_files(session, principal, model_id)
    return etag.respond(request, document, etag.MODEL_JSON)


@etag.file_route(
    router,
    "/{model_id}/weights.bin",
    etag.WEIGHTS_BIN,
    summary="The weights its model.json names: little-endian float32, in manifest order",
)
def get_weights_bin(model_id: ModelId, request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    _, weights = models.model_files(session, principal, model_id)
    return etag.respond(request, weights, etag.WEIGHTS_BIN)
