from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, status

from aws_extension.contract import MAX_WAIT_SECONDS, PERMISSION_INFERENCE
from aws_extension.middleware.dependencies import PageQuery, ServicesDep, require
from aws_extension.middleware.errors import Unavailable
from aws_extension.middleware.schemas.common import Name, Page, Problem, problems
from aws_extension.middleware.schemas.inferences import InferenceCreate, InferenceOut
from aws_extension.middleware.services.entities import Listing, Principal
from aws_extension.middleware.services.inference_entities import (
    Inference,
    LoraChoice,
    ModelChoice,
)
from aws_extension.middleware.services.inferences import InferenceService

router = APIRouter(prefix="/inferences", tags=["inferences"])

JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{24}$", description="The job's id.")]
Runner = Annotated[Principal, Depends(require(PERMISSION_INFERENCE))]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x20-\x7e]+$",
        description="Repeating a request with the same key and body returns the same job "
        "instead of starting another; the same key with another body is 409.",
    ),
]


def inference_service(services: ServicesDep) -> InferenceService:
    if services.inferences is None:
        raise Unavailable("This deployment has no compute configured for inference jobs.")
    return services.inferences


# Declared after the caller in every route, so 401/403 come before 503.
Jobs = Annotated[InferenceService, Depends(inference_service)]

_UNAVAILABLE: dict[int | str, dict[str, Any]] = {
    503: {"model": Problem, "description": "No compute configured (`unavailable`)."},
}
_CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "The named endpoint does not exist for you."},
    409: {
        "model": Problem,
        "description": "No endpoint you may use is in service (`no_endpoint`), the named "
        "one is not (`conflict`), or the Idempotency-Key was used for another body.",
    },
    413: {"model": Problem, "description": "The payload is too large (`too_large`)."},
}


@router.post(
    "",
    response_model=InferenceOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={**problems(400, 401, 403, 422), **_CREATE_ERRORS, **_UNAVAILABLE},
)
def create_inference(
    body: InferenceCreate, caller: Runner, jobs: Jobs, idempotency_key: IdempotencyKey = None
) -> Inference:
    """Queue a txt2img job; follow it with GET /inferences/{id}?wait=N."""
    models = ModelChoice(
        checkpoint=body.models.checkpoint,
        vae=body.models.vae,
        loras=[LoraChoice(lora.id, lora.weight) for lora in body.models.lora],
    )
    return jobs.create(
        caller,
        task=body.task,
        models=models,
        payload=body.payload,
        endpoint=body.endpoint,
        idempotency=idempotency_key,
    )


@router.get(
    "",
    response_model=Page[InferenceOut],
    responses={**problems(400, 401, 403, 422), **_UNAVAILABLE},
)
def list_inferences(
    caller: Runner,
    jobs: Jobs,
    page: Annotated[PageQuery, Depends()],
    user: Annotated[
        Name | None,
        Query(description="Another user's jobs (needs `user:all`); default: your own."),
    ] = None,
) -> Listing[Inference]:
    """Jobs of one user, newest first."""
    return jobs.list(caller, user=user, limit=page.limit, cursor=page.cursor)


@router.get(
    "/{job_id}",
    response_model=InferenceOut,
    responses={**problems(401, 403, 404, 422), **_UNAVAILABLE},
)
async def get_inference(
    job_id: JobId,
    caller: Runner,
    jobs: Jobs,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Long poll: answer as soon as the job is final, or after this many "
            "seconds.",
        ),
    ] = 0,
) -> Inference:
    return await jobs.wait(caller, job_id, wait)


@router.post(
    "/{job_id}/cancel",
    response_model=InferenceOut,
    responses={**problems(401, 403, 404, 409, 422), **_UNAVAILABLE},
)
def cancel_inference(job_id: JobId, caller: Runner, jobs: Jobs) -> Inference:
    """Cancel a queued or running job; 409 once it is final."""
    return jobs.cancel(caller, job_id)


@router.delete(
    "/{job_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**problems(401, 403, 404, 422), **_UNAVAILABLE},
)
def delete_inference(job_id: JobId, caller: Runner, jobs: Jobs) -> None:
    """Delete the job and its images; a job still running is cancelled first."""
    jobs.delete(caller, job_id)
