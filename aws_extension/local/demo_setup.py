"""`local --demo`: make Generate work on a fresh machine, with no GPU and no download.

Two things are made once and kept in the state folder like anything a user made: the demo
model (a tiny randomly initialised SD 1.x checkpoint, written on the spot by the endpoint
runtime's `make-demo-model` in the engine's interpreter, since making it needs torch) and a
local endpoint running the `diffusers` engine. Later starts find both and only start the
endpoint's runtime again.
"""

from __future__ import annotations

import json
import logging
import subprocess
import tempfile
from pathlib import Path

from aws_extension.contract import (
    CHECKPOINT_ACTIVE,
    ENDPOINT_FAILED,
    LOCAL_INSTANCE_TYPE,
    PERMISSIONS,
)
from aws_extension.middleware.errors import DomainError, NotFound
from aws_extension.middleware.services import Services
from aws_extension.middleware.services.entities import SYSTEM, Principal

logger = logging.getLogger(__name__)

#: Same name as `aws_extension.endpoint.tiny_model.DEMO_MODEL_NAME` (not imported: that
#: module belongs to the engine's world); a test checks they agree.
DEMO_MODEL_NAME = "tiny-random-sd15 (demo, random weights).safetensors"
DEMO_ENDPOINT_NAME = "local-demo"
MODEL_TIMEOUT_S = 600

_SYSTEM = Principal(username=SYSTEM, permissions=frozenset(PERMISSIONS))


def ensure_demo_model(services: Services, python: str) -> str:
    """The id of the `Active` demo model, made and stored first when there is none."""
    checkpoints = services.checkpoints
    assert checkpoints is not None  # the local stack always has blobs
    listing = checkpoints.list(_SYSTEM, model_type="Stable-diffusion", name=DEMO_MODEL_NAME)
    for model in listing.items:
        if model.name == DEMO_MODEL_NAME and model.status == CHECKPOINT_ACTIVE:
            return model.id
    with tempfile.TemporaryDirectory(prefix="sagemaker-demo-model-") as folder:
        made = subprocess.run(  # noqa: S603 - our own module, argv list
            [python, "-m", "aws_extension.endpoint", "make-demo-model", folder],
            capture_output=True,
            text=True,
            timeout=MODEL_TIMEOUT_S,
            check=False,
        )
        if made.returncode != 0:
            raise RuntimeError(
                "Could not make the demo model (does this interpreter have the engine's"
                f" packages: torch, diffusers?): {made.stderr.strip()[-500:]}"
            )
        path = Path(json.loads(made.stdout.strip().splitlines()[-1])["path"])
        model = checkpoints.add_file(
            _SYSTEM, path, model_type="Stable-diffusion", name=DEMO_MODEL_NAME
        )
    return model.id


def ensure_demo_endpoint(services: Services) -> None:
    """Create the local demo endpoint unless it exists (its runtime restarts with the stack).

    A `Failed` one (its runtime could not start last time, say torch was missing) is
    deployed again: the stack does not restart failed endpoints by itself.
    """
    endpoints = services.endpoints
    assert endpoints is not None  # the local stack always has compute
    try:
        if endpoints.get(_SYSTEM, DEMO_ENDPOINT_NAME).status != ENDPOINT_FAILED:
            return
        endpoints.delete(_SYSTEM, DEMO_ENDPOINT_NAME)
    except NotFound:
        pass
    endpoints.create(
        _SYSTEM,
        name=DEMO_ENDPOINT_NAME,
        type="async",
        instance_type=LOCAL_INSTANCE_TYPE,
        initial_instance_count=1,
        autoscaling=None,
        concurrency_per_instance=1,
        allowed_roles=(),
        engine="diffusers",
    )


def prepare_demo(services: Services, python: str) -> None:
    """Both of the above, reported on the console; a failure is printed, never fatal."""
    try:
        ensure_demo_model(services, python)
        ensure_demo_endpoint(services)
    except (DomainError, RuntimeError, OSError, subprocess.SubprocessError) as error:
        print(f"Demo setup failed: {error}", flush=True)
        return
    print(
        f"Demo ready: model '{DEMO_MODEL_NAME}' and local endpoint '{DEMO_ENDPOINT_NAME}'"
        " (its images are noise: the model has random weights).",
        flush=True,
    )
