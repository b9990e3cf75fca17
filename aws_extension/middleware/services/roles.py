"""Roles: named sets of permissions that users are given.

Rules (docs/architecture.md, "Security rules"): a caller may only put permissions it holds
into a role, and only touch a role whose permissions it holds all of, so a role manager
cannot strip the super admin's role; a role in use cannot be deleted; no change may leave
nobody holding `role:all` or `user:all`.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_extension.middleware.errors import Conflict, NotFound
from aws_extension.middleware.records import AlreadyExists, Item, Records
from aws_extension.middleware.services.access import Access
from aws_extension.middleware.services.entities import (
    ROLE,
    USER,
    Listing,
    Principal,
    Role,
    canonical,
    role_from,
    timestamp,
)


class RoleService:
    def __init__(self, records: Records, access: Access, clock: Callable[[], float]) -> None:
        self._records = records
        self._access = access
        self._clock = clock

    def list(self, *, limit: int, cursor: str | None) -> Listing[Role]:
        page = self._records.list(ROLE, limit=limit, cursor=cursor)
        return Listing([role_from(item) for item in page.items], page.next_cursor)

    def get(self, name: str) -> Role:
        return role_from(self._item(name))

    def create(self, caller: Principal, name: str, permissions: list[str]) -> Role:
        self._access.require_held(caller, permissions, f"create role {name!r}")
        now = timestamp(self._clock)
        doc = {
            "permissions": canonical(permissions),
            "created_by": caller.username,
            "created_at": now,
            "updated_at": now,
        }
        try:
            return role_from(self._records.create(ROLE, name, doc))
        except AlreadyExists:
            raise Conflict(f"A role named {name!r} already exists.") from None

    def update(self, caller: Principal, name: str, permissions: list[str]) -> Role:
        item = self._item(name)
        self._access.require_held(caller, item.doc["permissions"], f"change role {name!r}")
        self._access.require_held(caller, permissions, f"change role {name!r}")
        self._access.ensure_managers_remain(roles={name: permissions})
        doc = {
            **item.doc,
            "permissions": canonical(permissions),
            "updated_at": timestamp(self._clock),
        }
        return role_from(self._records.update(ROLE, name, doc, expected_version=item.version))

    def delete(self, caller: Principal, name: str) -> None:
        item = self._item(name)
        self._access.require_held(caller, item.doc["permissions"], f"delete role {name!r}")
        holders = [user.key for user in self._records.scan(USER) if name in user.doc["roles"]]
        if holders:
            shown = ", ".join(repr(holder) for holder in holders[:5])
            more = f" and {len(holders) - 5} more" if len(holders) > 5 else ""
            raise Conflict(
                f"Role {name!r} is still assigned to {shown}{more}; take it away from them first."
            )
        self._records.delete(ROLE, name, expected_version=item.version)

    def _item(self, name: str) -> Item:
        item = self._records.get(ROLE, name)
        if item is None:
            raise NotFound(f"No role named {name!r}.")
        return item
