"""What the inference service takes from and hands to the routers, and how a stored job
becomes it.

Plain dataclasses, like `entities.py`: a job's document also holds the object keys of its
models and its idempotency key, and neither leaves the record, because `Inference` has no
field for them. Image keys become fresh download URLs on every read, so a stored job never
holds a URL that could expire.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aws_extension.middleware.records import Doc
from aws_extension.middleware.services.inference_store import Job

CHECKPOINT_TYPE = "Stable-diffusion"
VAE_TYPE = "VAE"
LORA_TYPE = "Lora"


@dataclass(frozen=True)
class LoraChoice:
    id: str
    weight: float = 1.0


@dataclass(frozen=True)
class ModelChoice:
    """The models of a request, by id."""

    checkpoint: str
    vae: str | None = None
    loras: list[LoraChoice] = field(default_factory=list)


@dataclass(frozen=True)
class JobImage:
    #: A fresh download URL, valid for `InferencePolicy.image_url_ttl` seconds.
    url: str
    seed: int | None
    infotext: str | None


@dataclass(frozen=True)
class Inference:
    id: str
    status: str
    task: str
    endpoint: str
    models: dict[str, Any]
    payload: dict[str, Any]
    created_by: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline_at: datetime
    images: list[JobImage]
    info: dict[str, Any] | None
    parameters: dict[str, Any] | None
    timings: dict[str, Any] | None
    error: str | None
    error_code: str | None


def inference_from(job: Job, image_url: Callable[[str], str]) -> Inference:
    """The job as the API shows it; `image_url` turns an image's object key into a URL."""
    doc = job.doc
    images = [
        JobImage(image_url(image["key"]), image["seed"], image["infotext"])
        for image in doc["images"]
    ]
    return Inference(
        id=job.id,
        status=doc["status"],
        task=doc["task"],
        endpoint=doc["endpoint"],
        models=_models_out(doc["models"]),
        payload=doc["payload"],
        created_by=doc["created_by"],
        created_at=datetime.fromisoformat(doc["created_at"]),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
        started_at=_when(doc["started_at"]),
        finished_at=_when(doc["finished_at"]),
        deadline_at=datetime.fromisoformat(doc["deadline_at"]),
        images=images,
        info=doc["info"],
        parameters=doc["parameters"],
        timings=doc["timings"],
        error=doc["error"],
        error_code=doc["error_code"],
    )


def _when(iso: str | None) -> datetime | None:
    return datetime.fromisoformat(iso) if iso else None


def _models_out(models: Doc) -> dict[str, Any]:
    """The job's models without their object keys."""

    def shown(use: Doc | None) -> dict[str, Any] | None:
        if use is None:
            return None
        fields = ("id", "name", "sha256", "weight") if "weight" in use else ("id", "name", "sha256")
        return {name: use[name] for name in fields}

    return {
        CHECKPOINT_TYPE: shown(models[CHECKPOINT_TYPE]),
        VAE_TYPE: shown(models[VAE_TYPE]),
        LORA_TYPE: [shown(use) for use in models[LORA_TYPE]],
    }
