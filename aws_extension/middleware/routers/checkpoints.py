from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, status

from aws_extension.contract import MODEL_NAME_MAX_LENGTH, PERMISSION_CHECKPOINT
from aws_extension.middleware.dependencies import Caller, PageQuery, ServicesDep, require
from aws_extension.middleware.errors import Unavailable
from aws_extension.middleware.schemas.checkpoints import (
    CheckpointCreate,
    CheckpointOut,
    CheckpointPatch,
    CheckpointUploadOut,
    CompleteRequest,
    DuplicateProblem,
    ImportRequest,
    ModelType,
    PartsRequest,
    PartUrlsOut,
    Status,
)
from aws_extension.middleware.schemas.common import Page, Problem, problems
from aws_extension.middleware.services.checkpoint_store import Checkpoint
from aws_extension.middleware.services.checkpoints import (
    CheckpointService,
    PartUrls,
    StartedUpload,
)
from aws_extension.middleware.services.entities import Listing, Principal

router = APIRouter(prefix="/checkpoints", tags=["checkpoints"])

CheckpointId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="The model's id.")]
Manager = Annotated[Principal, Depends(require(PERMISSION_CHECKPOINT))]


def checkpoint_service(services: ServicesDep) -> CheckpointService:
    if services.checkpoints is None:
        raise Unavailable("This deployment has no model storage configured.")
    return services.checkpoints


# Declared after the caller in every route, so 401/403 come before 503.
Models = Annotated[CheckpointService, Depends(checkpoint_service)]

_MORE: dict[int | str, dict[str, Any]] = {
    413: {"model": Problem, "description": "Over the deployment's model size (`too_large`)."},
    503: {"model": Problem, "description": "No model storage configured (`unavailable`)."},
}
_DUPLICATE: dict[int | str, dict[str, Any]] = {
    409: {
        "model": DuplicateProblem,
        "description": "The (type, name) is taken (`conflict`), or a model of this type with"
        " this SHA-256 is already Active (`duplicate_content`, naming it in `existing_id`).",
    }
}


@router.get("", response_model=Page[CheckpointOut], responses=problems(400, 401, 403, 422))
def list_checkpoints(
    caller: Caller,
    models: Models,
    page: Annotated[PageQuery, Depends()],
    model_type: Annotated[ModelType | None, Query(alias="type")] = None,
    model_status: Annotated[Status | None, Query(alias="status")] = None,
    name: Annotated[
        str | None,
        Query(max_length=MODEL_NAME_MAX_LENGTH, description="Part of the name, any case."),
    ] = None,
) -> Listing[Checkpoint]:
    """Models the caller may use, newest first. A page may hold fewer than `limit` items
    and still have a `next_cursor`: follow it until it is null."""
    return models.list(
        caller,
        model_type=model_type,
        status=model_status,
        name=name,
        limit=page.limit,
        cursor=page.cursor,
    )


@router.post(
    "",
    response_model=CheckpointUploadOut,
    status_code=status.HTTP_201_CREATED,
    responses={**problems(400, 401, 403, 422), **_DUPLICATE, **_MORE},
)
def create_checkpoint(body: CheckpointCreate, caller: Manager, models: Models) -> StartedUpload:
    """Start uploading a model: PUT each part to its URL, then complete with the ETags."""
    return models.start_upload(
        caller,
        name=body.name,
        model_type=body.type,
        size=body.size,
        sha256=body.sha256,
        allowed_roles=body.allowed_roles,
    )


@router.post(
    "/import",
    response_model=CheckpointOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**problems(400, 401, 403, 422), **_DUPLICATE, **_MORE},
)
def import_checkpoint(body: ImportRequest, caller: Manager, models: Models) -> Checkpoint:
    """Have the server download a model; poll GET /checkpoints/{id} for progress."""
    return models.import_url(
        caller,
        url=body.url,
        model_type=body.type,
        name=body.name,
        sha256=body.sha256,
        allowed_roles=body.allowed_roles,
    )


@router.get(
    "/{checkpoint_id}", response_model=CheckpointOut, responses=problems(401, 403, 404, 422)
)
def get_checkpoint(checkpoint_id: CheckpointId, caller: Caller, models: Models) -> Checkpoint:
    return models.get(caller, checkpoint_id)


@router.patch(
    "/{checkpoint_id}",
    response_model=CheckpointOut,
    responses=problems(400, 401, 403, 404, 409, 422),
)
def update_checkpoint(
    checkpoint_id: CheckpointId, body: CheckpointPatch, caller: Manager, models: Models
) -> Checkpoint:
    """Rename and/or change who may use the model; instant whatever its size."""
    return models.update(caller, checkpoint_id, name=body.name, allowed_roles=body.allowed_roles)


@router.delete(
    "/{checkpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 409, 422),
)
def delete_checkpoint(checkpoint_id: CheckpointId, caller: Manager, models: Models) -> None:
    """Delete the model and its file; stops an upload or import in progress."""
    models.delete(caller, checkpoint_id)


@router.post(
    "/{checkpoint_id}/parts",
    response_model=PartUrlsOut,
    responses=problems(400, 401, 403, 404, 409, 422),
)
def part_urls(
    checkpoint_id: CheckpointId, body: PartsRequest, caller: Manager, models: Models
) -> PartUrls:
    """Fresh part URLs, to resume an upload or replace expired ones."""
    return models.part_urls(caller, checkpoint_id, body.part_numbers)


@router.post(
    "/{checkpoint_id}/complete",
    response_model=CheckpointOut,
    responses=problems(400, 401, 403, 404, 409, 422),
)
def complete_upload(
    checkpoint_id: CheckpointId, body: CompleteRequest, caller: Manager, models: Models
) -> Checkpoint:
    """Join the parts; the model is Active once the stored size matches the declared one."""
    parts = [(part.part_number, part.etag) for part in body.parts]
    return models.complete(caller, checkpoint_id, parts, body.sha256)


@router.post(
    "/{checkpoint_id}/abort",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(401, 403, 404, 409, 422),
)
def abort_upload(checkpoint_id: CheckpointId, caller: Manager, models: Models) -> None:
    """Give up an upload (or forget a failed one): its parts and record go, the name is free."""
    models.abort(caller, checkpoint_id)
