"""What the runtime asks of an engine, and what an engine hands back."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aws_extension.endpoint.invocation import Invocation, ModelRef


@dataclass
class EngineResult:
    """A1111's TextToImageResponse, before base64 and JSON: PNG bytes, parameters, info."""

    images: list[bytes]
    parameters: dict[str, Any]
    #: A1111's `info`: a dict here (the runtime serialises it), or A1111's own JSON string
    info: dict[str, Any] | str
    load_s: float
    generate_s: float


class Engine(Protocol):
    name: str

    def start(self) -> None:
        """Get ready (import, warm up, start A1111); may take minutes; called once."""

    def ready(self) -> bool:
        """True when a job would run now: what GET /ping reports. Must answer at once."""

    def check(self, invocation: Invocation) -> None:
        """Refuse (InvalidRequest) a job this engine cannot run, before any model is fetched."""

    def txt2img(self, invocation: Invocation, paths: dict[ModelRef, Path]) -> EngineResult:
        """Run the job with its models at `paths` (in the cache, held for the call)."""

    def close(self) -> None:
        """Release what `start` took (processes, GPU memory)."""
