from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from aws_extension.middleware.schemas.common import (
    MAX_ROLES_PER_USER,
    Name,
    NewPassword,
    RequestBody,
)


class UserCreate(RequestBody):
    username: Name
    password: NewPassword
    roles: list[Name] = Field(default_factory=list, max_length=MAX_ROLES_PER_USER)


class UserUpdate(RequestBody):
    """Only the fields given change; a new password also signs the user out everywhere."""

    roles: list[Name] | None = Field(default=None, max_length=MAX_ROLES_PER_USER)
    password: NewPassword | None = None


class UserOut(BaseModel):
    username: str
    roles: list[str]
    permissions: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
