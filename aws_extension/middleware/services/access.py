"""The permission questions every service asks, answered from the records.

Nothing is cached: permissions are read on every request, so a role change or a deleted user
takes effect on the very next call, on every Lambda instance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aws_extension.contract import PERMISSION_ROLE, PERMISSION_USER
from aws_extension.middleware.errors import Conflict, Invalid, PermissionDenied
from aws_extension.middleware.records import Doc, Item, Records
from aws_extension.middleware.services.entities import ROLE, USER, Principal, canonical

#: Permissions that must always have at least one holder, or nobody could manage the system.
GUARDED = (PERMISSION_ROLE, PERMISSION_USER)


def quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)


def visible(doc: Doc, roles: frozenset[str] | None) -> bool:
    """Whether a model or endpoint shared with `doc["allowed_roles"]` is for a reader with
    `roles`: None is a manager, who sees them all; an empty `allowed_roles` shares with everyone."""
    return roles is None or not doc["allowed_roles"] or not roles.isdisjoint(doc["allowed_roles"])


class Access:
    def __init__(self, records: Records) -> None:
        self._records = records

    def permissions_of(self, role_names: Iterable[str]) -> frozenset[str]:
        """The union of the roles' permissions; roles that no longer exist add nothing."""
        held: set[str] = set()
        for name in role_names:
            item = self._records.get(ROLE, name)
            if item is not None:
                held.update(item.doc["permissions"])
        return frozenset(held)

    def principal(self, user: Item) -> Principal:
        return Principal(user.key, self.permissions_of(user.doc["roles"]))

    def known_roles(self, role_names: Iterable[str]) -> dict[str, frozenset[str]]:
        """Each named role's permissions; `Invalid` names every role that does not exist."""
        found: dict[str, frozenset[str]] = {}
        missing = []
        for name in role_names:
            item = self._records.get(ROLE, name)
            if item is None:
                missing.append(name)
            else:
                found[name] = frozenset(item.doc["permissions"])
        if missing:
            raise Invalid(
                f"Unknown role(s): {quoted(missing)}. Create them first or pick from GET /roles."
            )
        return found

    def reader_roles(self, caller: Principal, manager: str) -> frozenset[str] | None:
        """None for a caller holding the `manager` permission (it sees everything of its
        kind), else the caller's roles, which decide what `visible` lets it see."""
        if caller.holds(manager):
            return None
        user = self._records.get(USER, caller.username)
        return frozenset(user.doc["roles"]) if user is not None else frozenset()

    def role_list(self, role_names: Iterable[str]) -> list[str]:
        """What to store as `allowed_roles`: each name once, in order; `Invalid` if unknown."""
        unique = list(dict.fromkeys(role_names))
        self.known_roles(unique)
        return unique

    @staticmethod
    def require_held(caller: Principal, permissions: Iterable[str], action: str) -> None:
        """Refuse `action` if it involves a permission the caller does not hold itself."""
        lacking = canonical(set(permissions) - caller.permissions)
        if lacking:
            raise PermissionDenied(
                f"You cannot {action}: it involves {quoted(lacking)}, which you do not hold."
            )

    def ensure_managers_remain(
        self,
        *,
        users: Mapping[str, list[str]] | None = None,
        roles: Mapping[str, Iterable[str]] | None = None,
    ) -> None:
        """Refuse a change that would leave nobody holding `role:all` or `user:all`.

        `users` maps a username to its roles after the change; `roles` maps a role name to
        its permissions after the change. Only a change that takes the last holder away is
        refused, so an already broken deployment can still be repaired.
        """
        users = users or {}
        role_before = {item.key: set(item.doc["permissions"]) for item in self._records.scan(ROLE)}
        role_after = {**role_before, **{name: set(perms) for name, perms in (roles or {}).items()}}
        held_before: set[str] = set()
        held_after: set[str] = set()
        for item in self._records.scan(USER):
            current = item.doc["roles"]
            for name in current:
                held_before |= role_before.get(name, set())
            future = users.get(item.key, current)
            for name in future:
                held_after |= role_after.get(name, set())
        for permission in GUARDED:
            if permission in held_before and permission not in held_after:
                raise Conflict(
                    f"This change would leave nobody holding {permission!r}; "
                    "give it to another user first."
                )
