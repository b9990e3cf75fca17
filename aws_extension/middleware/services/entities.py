"""What the services hand to the routers, and how records become it.

These are plain dataclasses on purpose: the user's password hash and token epoch never leave
the record, because no dataclass here has a field for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Generic, TypeVar

from aws_extension.contract import PERMISSIONS
from aws_extension.middleware.records import Item

USER = "user"
ROLE = "role"

#: `created_by` of what the deployment itself made (the first super admin and its role).
SYSTEM = "system"

T = TypeVar("T")


@dataclass(frozen=True)
class Principal:
    """The signed-in caller, resolved from the records on every request."""

    username: str
    permissions: frozenset[str]

    def holds(self, permission: str) -> bool:
        return permission in self.permissions


@dataclass(frozen=True)
class Role:
    name: str
    permissions: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class User:
    username: str
    roles: list[str]
    permissions: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Session:
    access_token: str
    refresh_token: str
    expires_in: int
    user: User
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type)


@dataclass(frozen=True)
class Listing(Generic[T]):
    items: list[T]
    next_cursor: str | None


def canonical(permissions: Iterable[str]) -> list[str]:
    """Permissions without duplicates, in the contract's order, so output is stable."""
    wanted = set(permissions)
    return [permission for permission in PERMISSIONS if permission in wanted]


def timestamp(clock: Callable[[], float]) -> str:
    """The clock's now as ISO 8601 UTC, the form stored in documents."""
    return datetime.fromtimestamp(clock(), tz=timezone.utc).isoformat()


def role_from(item: Item) -> Role:
    doc = item.doc
    return Role(
        name=item.key,
        permissions=canonical(doc["permissions"]),
        created_by=doc["created_by"],
        created_at=datetime.fromisoformat(doc["created_at"]),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
    )


def user_from(item: Item, permissions: Iterable[str]) -> User:
    doc = item.doc
    return User(
        username=item.key,
        roles=list(doc["roles"]),
        permissions=canonical(permissions),
        created_by=doc["created_by"],
        created_at=datetime.fromisoformat(doc["created_at"]),
        updated_at=datetime.fromisoformat(doc["updated_at"]),
    )
