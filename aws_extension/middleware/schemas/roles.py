from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from aws_extension.middleware.schemas.common import Name, Permission, RequestBody


class RoleCreate(RequestBody):
    name: Name
    permissions: list[Permission] = Field(max_length=32)


class RoleUpdate(RequestBody):
    permissions: list[Permission] = Field(max_length=32)


class RoleOut(BaseModel):
    name: str
    permissions: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime
