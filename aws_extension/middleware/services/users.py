"""Users: a name, a password hash, roles, and the epoch that keeps their tokens alive.

Rules (docs/architecture.md, "Security rules"): a caller may only assign roles whose
permissions it holds all of, and only change or delete a user whose permissions it holds
all of (a `user:all` holder cannot reset the super admin's password and become one);
nobody deletes themselves; no change may leave nobody holding `role:all` or `user:all`.
A password change replaces the token epoch, so the user's old tokens stop working.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from aws_extension.middleware.errors import Conflict, NotFound
from aws_extension.middleware.records import AlreadyExists, Doc, Item, Records
from aws_extension.middleware.security.passwords import PasswordHasher
from aws_extension.middleware.services.access import Access
from aws_extension.middleware.services.entities import (
    USER,
    Listing,
    Principal,
    User,
    timestamp,
    user_from,
)


def new_epoch() -> str:
    """A fresh token epoch. Random rather than a counter, so that a user deleted and then
    re-created under the same name does not revive the old user's tokens."""
    return secrets.token_urlsafe(12)


def unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


class UserService:
    def __init__(
        self,
        records: Records,
        access: Access,
        hasher: PasswordHasher,
        clock: Callable[[], float],
    ) -> None:
        self._records = records
        self._access = access
        self._hasher = hasher
        self._clock = clock

    def list(self, *, limit: int, cursor: str | None) -> Listing[User]:
        page = self._records.list(USER, limit=limit, cursor=cursor)
        return Listing([self.view(item) for item in page.items], page.next_cursor)

    def get(self, username: str) -> User:
        return self.view(self.item(username))

    def create(self, caller: Principal, username: str, password: str, roles: list[str]) -> User:
        roles = unique(roles)
        granted = self._access.known_roles(roles)
        self._access.require_held(
            caller, frozenset().union(*granted.values()), f"create user {username!r}"
        )
        now = timestamp(self._clock)
        doc: Doc = {
            "roles": roles,
            "password_hash": self._hasher.hash(password),
            "token_epoch": new_epoch(),
            "created_by": caller.username,
            "created_at": now,
            "updated_at": now,
        }
        try:
            return self.view(self._records.create(USER, username, doc))
        except AlreadyExists:
            raise Conflict(f"A user named {username!r} already exists.") from None

    def update(
        self,
        caller: Principal,
        username: str,
        *,
        roles: list[str] | None = None,
        password: str | None = None,
    ) -> User:
        item = self.item(username)
        action = f"change user {username!r}"
        self._access.require_held(caller, self._access.permissions_of(item.doc["roles"]), action)
        doc = dict(item.doc)
        if roles is not None:
            roles = unique(roles)
            granted = self._access.known_roles(roles)
            self._access.require_held(caller, frozenset().union(*granted.values()), action)
            self._access.ensure_managers_remain(users={username: roles})
            doc["roles"] = roles
        if password is not None:
            doc["password_hash"] = self._hasher.hash(password)
            doc["token_epoch"] = new_epoch()
        doc["updated_at"] = timestamp(self._clock)
        return self.view(self._records.update(USER, username, doc, expected_version=item.version))

    def delete(self, caller: Principal, username: str) -> None:
        if username == caller.username:
            raise Conflict("You cannot delete yourself; ask another user manager.")
        item = self.item(username)
        self._access.require_held(
            caller, self._access.permissions_of(item.doc["roles"]), f"delete user {username!r}"
        )
        # No holder check needed: the caller holds everything the deleted user held and stays.
        # Removing the record is what revokes the user's tokens: they name a user that is gone.
        self._records.delete(USER, username, expected_version=item.version)

    def item(self, username: str) -> Item:
        item = self._records.get(USER, username)
        if item is None:
            raise NotFound(f"No user named {username!r}.")
        return item

    def view(self, item: Item) -> User:
        return user_from(item, self._access.permissions_of(item.doc["roles"]))
