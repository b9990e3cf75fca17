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

# Statuses of a checkpoint (model). `Completing` lasts while the server joins the uploaded
# parts; only `Active` models are complete and offered to endpoints.
CHECKPOINT_UPLOADING = "Uploading"
CHECKPOINT_COMPLETING = "Completing"
CHECKPOINT_IMPORTING = "Importing"
CHECKPOINT_ACTIVE = "Active"
CHECKPOINT_FAILED = "Failed"
CHECKPOINT_STATUSES: tuple[str, ...] = (
    CHECKPOINT_UPLOADING,
    CHECKPOINT_COMPLETING,
    CHECKPOINT_IMPORTING,
    CHECKPOINT_ACTIVE,
    CHECKPOINT_FAILED,
)

#: A model's name is its file name (endpoints store the file under it), so it must be a
#: portable one: no path separators, nothing Windows forbids, no control characters.
MODEL_NAME_MAX_LENGTH = 200
MODEL_NAME_FORBIDDEN = '/\\:*?"<>|'
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"
#: Most part URLs in one answer: POST /checkpoints returns those of the first parts, and
#: POST /checkpoints/{id}/parts takes at most this many part numbers per call.
MAX_PART_URLS = 1000


def model_name_problem(name: str) -> str | None:
    """Why `name` cannot name a model, in words for the user; None when it can."""
    if not name or len(name) > MODEL_NAME_MAX_LENGTH:
        return f"use 1-{MODEL_NAME_MAX_LENGTH} characters"
    if name != name.strip():
        return "remove the leading or trailing spaces"
    if name in (".", ".."):
        return "'.' and '..' are not file names"
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        return "remove the control characters"
    bad = sorted({char for char in name if char in MODEL_NAME_FORBIDDEN})
    if bad:
        return f"remove {' '.join(bad)} (a model name is a file name, not a path)"
    return None


# Machine-readable `code` member of every error body, so the client can tell a wrong API
# token (403) from a missing permission (403) without parsing English.
ERROR_INVALID_API_KEY = "invalid_api_key"
ERROR_NOT_AUTHENTICATED = "not_authenticated"
ERROR_INVALID_TOKEN = "invalid_token"  # noqa: S105 (an error code)
ERROR_WRONG_CREDENTIALS = "wrong_credentials"
ERROR_PERMISSION_DENIED = "permission_denied"
ERROR_NOT_FOUND = "not_found"
ERROR_CONFLICT = "conflict"
#: 409 for a model whose type and SHA-256 match one already `Active`; names it in `existing_id`.
ERROR_DUPLICATE_CONTENT = "duplicate_content"
ERROR_INVALID = "invalid"
ERROR_VALIDATION = "validation_error"
ERROR_TOO_MANY_ATTEMPTS = "too_many_attempts"
ERROR_INTERNAL = "internal"
#: 413: a model over the deployment's size limit, or a part over the part size limit.
ERROR_TOO_LARGE = "too_large"
#: 503: the deployment lacks what the route needs (a middleware built without model storage).
ERROR_UNAVAILABLE = "unavailable"
# Codes of the local stack's signed part and download URLs (S3 answers XML instead).
ERROR_INVALID_SIGNATURE = "invalid_signature"
ERROR_URL_EXPIRED = "url_expired"


def api_major(version: str) -> int:
    """Major number of an `api_version` string such as "1.0"; raises ValueError if malformed."""
    return int(version.split(".", 1)[0])


# Endpoints. `type` is SageMaker's invocation style: `async` (InvokeEndpointAsync, queued,
# may scale to zero) or `realtime` (InvokeEndpoint). The local stack's only instance type
# is `local`: a runtime process on the stack's own machine.
ENDPOINT_TYPES: tuple[str, ...] = ("async", "realtime")
ENDPOINT_ENGINES: tuple[str, ...] = ("diffusers", "webui")
LOCAL_INSTANCE_TYPE = "local"
#: SageMaker GPU instance types offered for endpoints: the current GPU families in the sizes
#: that fit one Stable Diffusion worker per GPU.
SAGEMAKER_INSTANCE_TYPES: tuple[str, ...] = (
    "ml.g4dn.xlarge",
    "ml.g4dn.2xlarge",
    "ml.g4dn.4xlarge",
    "ml.g4dn.8xlarge",
    "ml.g4dn.12xlarge",
    "ml.g5.xlarge",
    "ml.g5.2xlarge",
    "ml.g5.4xlarge",
    "ml.g5.8xlarge",
    "ml.g5.12xlarge",
    "ml.g5.24xlarge",
    "ml.g5.48xlarge",
    "ml.g6.xlarge",
    "ml.g6.2xlarge",
    "ml.g6.4xlarge",
    "ml.g6.8xlarge",
    "ml.g6.12xlarge",
    "ml.g6.24xlarge",
    "ml.g6.48xlarge",
    "ml.g6e.xlarge",
    "ml.g6e.2xlarge",
    "ml.g6e.4xlarge",
    "ml.g6e.8xlarge",
    "ml.g6e.12xlarge",
    "ml.g6e.24xlarge",
    "ml.g6e.48xlarge",
    "ml.p4d.24xlarge",
    "ml.p5.48xlarge",
)
ENDPOINT_CREATING = "Creating"
ENDPOINT_IN_SERVICE = "InService"
ENDPOINT_UPDATING = "Updating"
ENDPOINT_DELETING = "Deleting"
ENDPOINT_FAILED = "Failed"
ENDPOINT_STATUSES: tuple[str, ...] = (
    ENDPOINT_CREATING,
    ENDPOINT_IN_SERVICE,
    ENDPOINT_UPDATING,
    ENDPOINT_DELETING,
    ENDPOINT_FAILED,
)

# Inference jobs: queued -> running -> succeeded | failed | cancelled.
INFERENCE_QUEUED = "queued"
INFERENCE_RUNNING = "running"
INFERENCE_SUCCEEDED = "succeeded"
INFERENCE_FAILED = "failed"
INFERENCE_CANCELLED = "cancelled"
INFERENCE_STATUSES: tuple[str, ...] = (
    INFERENCE_QUEUED,
    INFERENCE_RUNNING,
    INFERENCE_SUCCEEDED,
    INFERENCE_FAILED,
    INFERENCE_CANCELLED,
)
INFERENCE_FINAL_STATUSES: tuple[str, ...] = (
    INFERENCE_SUCCEEDED,
    INFERENCE_FAILED,
    INFERENCE_CANCELLED,
)
INFERENCE_TASKS: tuple[str, ...] = ("txt2img",)
#: Longest long poll of GET /inferences/{id}?wait=N (API Gateway ends requests at 29 s).
MAX_WAIT_SECONDS = 25
#: 409 for POST /inferences when no endpoint the caller may use can take the job.
ERROR_NO_ENDPOINT = "no_endpoint"
