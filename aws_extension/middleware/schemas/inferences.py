"""Bodies of the /inferences routes (txt2img jobs)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from aws_extension.contract import INFERENCE_STATUSES, INFERENCE_TASKS
from aws_extension.middleware.schemas.common import Name, RequestBody

#: A1111's own LoRA weight slider stops at +-2; beyond 10 it is a typo (the runtime agrees).
LORA_WEIGHT_LIMIT = 10.0
#: More LoRAs than this in one image is a mistake, and each one is a download.
MAX_LORAS = 20
ModelId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{24}$"),
    Field(description="A model's id (GET /checkpoints)."),
]

Task = Literal[INFERENCE_TASKS]  # type: ignore[valid-type]
Status = Literal[INFERENCE_STATUSES]  # type: ignore[valid-type]


class LoraIn(RequestBody):
    id: ModelId
    weight: float = Field(default=1.0, ge=-LORA_WEIGHT_LIMIT, le=LORA_WEIGHT_LIMIT)


class ModelsIn(RequestBody):
    """Models by id, under A1111's folder names; only these types can be honoured."""

    checkpoint: ModelId = Field(alias="Stable-diffusion")
    vae: ModelId | None = Field(default=None, alias="VAE")
    lora: list[LoraIn] = Field(default_factory=list, alias="Lora", max_length=MAX_LORAS)


class InferenceCreate(RequestBody):
    task: Task = Field(description="What to run; only txt2img so far.")
    endpoint: Name | None = Field(
        default=None,
        description="An endpoint's name; by default the first one you may use, in service "
        "first, then by name.",
    )
    models: ModelsIn
    payload: dict[str, Any] = Field(
        description="The AUTOMATIC1111 /sdapi/v1/txt2img body. Its model selection "
        "(override_settings.sd_model_checkpoint) is replaced by `models`.",
        examples=[{"prompt": "a lighthouse at dusk", "steps": 20, "width": 512, "height": 512}],
    )


class ModelUseOut(BaseModel):
    id: str
    name: str = Field(description="The model's name when the job was made.")
    sha256: str | None


class LoraUseOut(ModelUseOut):
    weight: float


class ModelsOut(BaseModel):
    checkpoint: ModelUseOut = Field(alias="Stable-diffusion")
    vae: ModelUseOut | None = Field(alias="VAE")
    lora: list[LoraUseOut] = Field(alias="Lora")


class ImageOut(BaseModel):
    url: str = Field(description="GET it for the image; a fresh URL with every reply.")
    seed: int | None
    infotext: str | None = Field(description="A1111's generation parameters text.")


class InferenceOut(BaseModel):
    id: str
    status: Status
    task: str
    endpoint: str
    models: ModelsOut
    payload: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime = Field(description="A job not final by then is failed (`deadline`).")
    images: list[ImageOut]
    info: dict[str, Any] | None = Field(
        description="A1111's info object (seed, all_seeds, infotexts, ...), once succeeded."
    )
    parameters: dict[str, Any] | None = Field(description="The payload with A1111's defaults.")
    timings: dict[str, Any] | None = Field(description="Seconds: fetch_s, load_s, generate_s.")
    error: str | None = Field(description="Why the job failed.")
    error_code: str | None = Field(
        description="Machine-readable: the runtime's code (invalid, fetch_failed, "
        "engine_error, ...) or deadline, endpoint_unavailable, endpoint_error, "
        "invalid_reply, interrupted."
    )
