"""Names the extension and the middleware share.

Dependency-free on purpose: the WebUI process (pydantic 1, gradio 3.41) and the middleware
(pydantic 2, current FastAPI) both import it, so it may use only the standard library.
"""

from __future__ import annotations

import re

#: Version of the REST API. The client accepts any server with the same major number.
API_VERSION = "1.0"

# The six permissions of the product; a role holds a subset of them.
PERMISSION_ROLE = "role:all"
PERMISSION_USER = "user:all"
PERMISSION_ENDPOINT = "sagemaker_endpoint:all"
PERMISSION_INFERENCE = "inference:all"
PERMISSION_CHECKPOINT = "checkpoint:all"
PERMISSION_TRAIN = "train:all"

PERMISSIONS: tuple[str, ...] = (
    PERMISSION_ROLE,
    PERMISSION_USER,
    PERMISSION_ENDPOINT,
    PERMISSION_INFERENCE,
    PERMISSION_CHECKPOINT,
    PERMISSION_TRAIN,
)

#: Human words for each permission, shown next to the checkboxes in the tab.
PERMISSION_LABELS: dict[str, str] = {
    PERMISSION_ROLE: "manage roles",
    PERMISSION_USER: "manage users",
    PERMISSION_ENDPOINT: "manage SageMaker endpoints",
    PERMISSION_INFERENCE: "run inference",
    PERMISSION_CHECKPOINT: "manage models",
    PERMISSION_TRAIN: "train models",
}

#: Role and user names: short, URL-safe, starting with a letter or digit.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$"
NAME_RE = re.compile(NAME_PATTERN)

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256

#: Model types use A1111's folder names.
MODEL_TYPES: tuple[str, ...] = (
    "Stable-diffusion",
    "Lora",
    "VAE",
    "ControlNet",
    "embeddings",
    "hypernetworks",
)

# Machine-readable `code` member of every error body, so the client can tell a wrong API
# token (403) from a missing permission (403) without parsing English.
ERROR_INVALID_API_KEY = "invalid_api_key"
ERROR_NOT_AUTHENTICATED = "not_authenticated"
ERROR_INVALID_TOKEN = "invalid_token"
ERROR_WRONG_CREDENTIALS = "wrong_credentials"
ERROR_PERMISSION_DENIED = "permission_denied"
ERROR_NOT_FOUND = "not_found"
ERROR_CONFLICT = "conflict"
ERROR_INVALID = "invalid"
ERROR_VALIDATION = "validation_error"
ERROR_TOO_MANY_ATTEMPTS = "too_many_attempts"
ERROR_INTERNAL = "internal"


def api_major(version: str) -> int:
    """Major number of an `api_version` string such as "1.0"; raises ValueError if malformed."""
    return int(version.split(".", 1)[0])
