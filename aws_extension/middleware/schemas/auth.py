from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from aws_extension.middleware.schemas.common import (
    AnyPassword,
    Name,
    NewPassword,
    RequestBody,
)
from aws_extension.middleware.schemas.users import UserOut


class Pong(BaseModel):
    message: Literal["pong"] = "pong"
    api_version: str = Field(examples=["1.0"])


class LoginRequest(RequestBody):
    username: Name
    password: AnyPassword


class RefreshRequest(RequestBody):
    refresh_token: str = Field(min_length=1, max_length=4096)


class PasswordChange(RequestBody):
    current_password: AnyPassword
    new_password: NewPassword


class SessionOut(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"  # noqa: S105 (the OAuth token type)
    expires_in: int = Field(description="Seconds until the access token expires.")
    user: UserOut
