"""Bodies of the /checkpoints routes (models and their uploads)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field, model_validator
from pydantic_core import PydanticCustomError

from aws_extension.contract import (
    CHECKPOINT_STATUSES,
    MAX_PART_URLS,
    MODEL_NAME_MAX_LENGTH,
    MODEL_TYPES,
    SHA256_PATTERN,
    model_name_problem,
)
from aws_extension.middleware.blobs.base import MAX_PART_NUMBER
from aws_extension.middleware.schemas.common import Name, Problem, RequestBody

#: Enough roles to share a model with; bounds the work per request.
MAX_ALLOWED_ROLES = 50
#: Long enough for signed download links (S3 presigned URLs run to ~1,500 characters).
MAX_URL_LENGTH = 4096
_SHA256 = re.compile(SHA256_PATTERN)


def _model_name(value: str) -> str:
    problem = model_name_problem(value)
    if problem is not None:
        # The contract's words, not pydantic's "Value error, ...", reach the user.
        raise PydanticCustomError("model_name", "{problem}", {"problem": problem})
    return value


def _sha256(value: str) -> str:
    if not _SHA256.match(value):
        raise PydanticCustomError("sha256", "use the 64 hexadecimal digits of the file's SHA-256")
    return value.lower()


ModelName = Annotated[
    str,
    Field(
        max_length=MODEL_NAME_MAX_LENGTH,
        description="The model's file name, as A1111 lists it; unique per type, ignoring case.",
        examples=["sd_xl_base_1.0.safetensors"],
    ),
    AfterValidator(_model_name),
]
ModelType = Literal[MODEL_TYPES]  # type: ignore[valid-type]
Status = Literal[CHECKPOINT_STATUSES]  # type: ignore[valid-type]
Sha256 = Annotated[
    str,
    Field(description="SHA-256 of the whole file, 64 hex digits.", examples=["0" * 64]),
    AfterValidator(_sha256),
]
PartNumber = Annotated[int, Field(ge=1, le=MAX_PART_NUMBER)]
ALLOWED_ROLES_HELP = "Roles whose holders may use the model; empty: every signed-in user."


class CheckpointCreate(RequestBody):
    name: ModelName
    type: ModelType
    size: int = Field(gt=0, description="Exact size of the file in bytes.")
    sha256: Sha256 | None = Field(
        default=None,
        description="If given, a model of this type and content already Active is reported "
        "(409 `duplicate_content`) and the completion must carry the same value.",
    )
    allowed_roles: list[Name] = Field(
        default_factory=list, max_length=MAX_ALLOWED_ROLES, description=ALLOWED_ROLES_HELP
    )


class PartsRequest(RequestBody):
    part_numbers: list[PartNumber] = Field(min_length=1, max_length=MAX_PART_URLS)


class CompletedPart(RequestBody):
    part_number: PartNumber
    etag: str = Field(
        min_length=1, max_length=130, description="The ETag header the part's PUT answered with."
    )


class CompleteRequest(RequestBody):
    parts: list[CompletedPart] = Field(min_length=1, max_length=MAX_PART_NUMBER)
    sha256: Sha256 | None = None


class CheckpointPatch(RequestBody):
    """Only the fields given change."""

    name: ModelName | None = None
    allowed_roles: list[Name] | None = Field(
        default=None, max_length=MAX_ALLOWED_ROLES, description=ALLOWED_ROLES_HELP
    )

    @model_validator(mode="after")
    def _something(self) -> CheckpointPatch:
        if self.name is None and self.allowed_roles is None:
            raise PydanticCustomError("nothing_to_change", "give name, allowed_roles or both")
        return self


class ImportRequest(RequestBody):
    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="http or https URL of the file; must reach a public host.",
    )
    type: ModelType
    name: ModelName | None = Field(
        default=None, description="Defaults to the last segment of the URL's path."
    )
    sha256: Sha256 | None = Field(
        default=None, description="If given, the download must have this SHA-256."
    )
    allowed_roles: list[Name] = Field(
        default_factory=list, max_length=MAX_ALLOWED_ROLES, description=ALLOWED_ROLES_HELP
    )


class ProgressOut(BaseModel):
    bytes_done: int
    bytes_total: int | None = Field(description="Null while the size is not known.")


class CheckpointOut(BaseModel):
    id: str
    name: str
    type: str
    size: int | None = Field(
        description="Bytes: declared while uploading, null while importing, stored once Active."
    )
    sha256: str | None = Field(description="Set once Active.")
    status: Status
    allowed_roles: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
    source: str | None = Field(
        description="Imports: where from (without credentials, query or fragment)."
    )
    progress: ProgressOut | None = Field(description="Imports: bytes downloaded so far.")
    error: str | None = Field(description="Why the model failed, when it did.")


class PartUrlOut(BaseModel):
    part_number: int
    url: str = Field(description="Takes one PUT of the part's bytes; answers with an ETag.")


class PartUrlsOut(BaseModel):
    parts: list[PartUrlOut]
    expires_at: datetime


class UploadOut(BaseModel):
    upload_id: str
    part_size: int = Field(description="Bytes per part; the last part may be shorter.")
    part_count: int
    parts: list[PartUrlOut] = Field(
        description=f"URLs of the first {MAX_PART_URLS} parts at most; "
        "POST /checkpoints/{id}/parts signs the rest."
    )
    expires_at: datetime


class CheckpointUploadOut(BaseModel):
    checkpoint: CheckpointOut
    upload: UploadOut


class DuplicateProblem(Problem):
    existing_id: str | None = Field(
        default=None, description="With `duplicate_content`: the Active model with this content."
    )
