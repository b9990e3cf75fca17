"""Shapes shared by every router: names, permissions, pages, problem details."""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from aws_extension.contract import (
    NAME_PATTERN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    PERMISSIONS,
)

T = TypeVar("T")

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
#: A password being set. Sign-in accepts any length up to the maximum, so that raising the
#: minimum later does not lock out existing users.
NewPassword = Annotated[
    str, StringConstraints(min_length=PASSWORD_MIN_LENGTH, max_length=PASSWORD_MAX_LENGTH)
]
AnyPassword = Annotated[str, StringConstraints(min_length=1, max_length=PASSWORD_MAX_LENGTH)]
Permission = Literal[PERMISSIONS]  # type: ignore[valid-type]

#: Enough for every role a deployment could sensibly have; bounds the work per request.
MAX_ROLES_PER_USER = 50


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class FieldError(BaseModel):
    field: str = Field(examples=["body.password"])
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details; `code` is the machine-readable reason."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[FieldError] | None = Field(
        default=None, description="Only on 422: one entry per invalid field."
    )


_DESCRIPTIONS = {
    400: "The request makes no sense in the current state (`invalid`).",
    401: "No token (`not_authenticated`), a bad one (`invalid_token`) or wrong credentials"
    " (`wrong_credentials`).",
    403: "Wrong API key (`invalid_api_key`) or missing permission (`permission_denied`).",
    404: "No such resource (`not_found`).",
    409: "Clashes with the current state (`conflict`).",
    422: "The body or a parameter is invalid (`validation_error`); `errors` names each field.",
    429: "Too many failed sign-ins (`too_many_attempts`); see `Retry-After`.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the error statuses a route can answer with."""
    return {status: {"model": Problem, "description": _DESCRIPTIONS[status]} for status in statuses}
