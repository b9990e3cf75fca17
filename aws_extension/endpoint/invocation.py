"""The body of POST /invocations, checked and turned into typed objects.

```
{"task": "txt2img",
 "models": {"Stable-diffusion": {"id", "sha256", "url", "name"},
            "Lora": [{"id", "sha256", "url", "name", "weight"}, ...],
            "VAE": {"id", "sha256", "url", "name"}},
 "payload": <A1111 /sdapi/v1/txt2img body>}
```

Only the envelope is checked here; each engine checks the payload fields it uses, because the
webui engine forwards the payload to A1111, which validates it itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from aws_extension.contract import model_name_problem
from aws_extension.endpoint.errors import InvalidRequest

TASKS = ("txt2img",)
CHECKPOINT = "Stable-diffusion"
LORA = "Lora"
VAE = "VAE"
MODEL_KINDS = (CHECKPOINT, LORA, VAE)
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
#: LoRA weights outside this range are almost always a typo; A1111's own UI stops at +-2.
LORA_WEIGHT_LIMIT = 10.0


@dataclass(frozen=True)
class ModelRef:
    """One model of a job: where to fetch it, how to check it, and what to call it."""

    kind: str
    name: str
    sha256: str
    url: str
    id: str | None = None
    weight: float = 1.0

    @property
    def stem(self) -> str:
        """The name without its extension: what A1111 calls the model in infotexts and tags."""
        return PurePosixPath(self.name).stem

    @property
    def suffix(self) -> str:
        return PurePosixPath(self.name).suffix.lower()

    @property
    def short_hash(self) -> str:
        """A1111's "Model hash": the first ten hex digits of the file's SHA-256."""
        return self.sha256[:10]


@dataclass(frozen=True)
class Invocation:
    task: str
    checkpoint: ModelRef
    loras: tuple[ModelRef, ...]
    vae: ModelRef | None
    payload: dict[str, Any]

    def models(self) -> list[ModelRef]:
        """Every model of the job, checkpoint first: the order they are fetched in."""
        return [self.checkpoint, *self.loras, *([self.vae] if self.vae else [])]


def parse_invocation(body: Any) -> Invocation:
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object with task, models and payload.")
    task = body.get("task")
    if task not in TASKS:
        raise InvalidRequest(f"Unknown task {task!r}; this runtime knows: {', '.join(TASKS)}.")
    payload = body.get("payload")
    if not isinstance(payload, dict):
        raise InvalidRequest("payload must be a JSON object: the A1111 txt2img body.")
    models = body.get("models")
    if not isinstance(models, dict):
        raise InvalidRequest('models must be an object, e.g. {"Stable-diffusion": {...}}.')
    unknown = sorted(set(models) - set(MODEL_KINDS))
    if unknown:
        raise InvalidRequest(
            f"Model types {', '.join(unknown)} are not supported here; "
            f"send only {', '.join(MODEL_KINDS)}."
        )
    if not models.get(CHECKPOINT):
        raise InvalidRequest(f"models.{CHECKPOINT} is missing: every job needs a checkpoint.")
    checkpoint = _model(models[CHECKPOINT], CHECKPOINT, f"models.{CHECKPOINT}")
    loras_raw = models.get(LORA)
    if loras_raw is None:
        loras_raw = []
    if not isinstance(loras_raw, list):
        raise InvalidRequest(f"models.{LORA} must be a list.")
    loras = tuple(
        _model(item, LORA, f"models.{LORA}[{index}]") for index, item in enumerate(loras_raw)
    )
    stems = [lora.stem for lora in loras]
    if len(set(stems)) != len(stems):
        raise InvalidRequest("Two LoRAs share one name; each LoRA must be named once.")
    vae = _model(models[VAE], VAE, f"models.{VAE}") if models.get(VAE) else None
    return Invocation(task, checkpoint, loras, vae, payload)


def _model(raw: Any, kind: str, where: str) -> ModelRef:
    if not isinstance(raw, dict):
        raise InvalidRequest(f"{where} must be an object with sha256, url and name.")
    name = raw.get("name")
    if not isinstance(name, str) or (problem := model_name_problem(name)):
        reason = problem if isinstance(name, str) else "it is missing"
        raise InvalidRequest(f"{where}.name is not a usable file name: {reason}.")
    sha256 = raw.get("sha256")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise InvalidRequest(f"{where}.sha256 must be 64 hex digits (the file's SHA-256).")
    url = raw.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise InvalidRequest(f"{where}.url must be an http(s) URL (a presigned GET URL).")
    model_id = raw.get("id")
    if model_id is not None and not isinstance(model_id, str):
        raise InvalidRequest(f"{where}.id must be a string.")
    weight = raw.get("weight", 1.0)
    if kind != LORA and "weight" in raw:
        raise InvalidRequest(f"{where}.weight is only meaningful for a LoRA.")
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise InvalidRequest(f"{where}.weight must be a number.")
    if abs(weight) > LORA_WEIGHT_LIMIT:
        raise InvalidRequest(f"{where}.weight must be between -10 and 10.")
    return ModelRef(kind, name, sha256.lower(), url, model_id, float(weight))
