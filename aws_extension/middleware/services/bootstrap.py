"""The first super admin, made by the deployment itself rather than through the API.

Nobody can sign in to an empty deployment, so whoever sets it up (the local stack on its
first start, a deploy-time step on AWS) calls `create_super_admin` with a password it chose
and shows once.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_extension.contract import PERMISSIONS
from aws_extension.middleware.records import Records
from aws_extension.middleware.security.passwords import PasswordHasher
from aws_extension.middleware.services.entities import ROLE, SYSTEM, USER, timestamp
from aws_extension.middleware.services.users import new_epoch


def has_users(records: Records) -> bool:
    return bool(records.list(USER, limit=1).items)


def create_super_admin(
    records: Records,
    hasher: PasswordHasher,
    clock: Callable[[], float],
    *,
    username: str,
    password: str,
    role: str,
) -> None:
    """Create `role` with all permissions (or give them to it) and `username` holding it.

    Raises `AlreadyExists` if the user exists: a super admin is never silently replaced.
    """
    now = timestamp(clock)
    existing = records.get(ROLE, role)
    every = list(PERMISSIONS)
    if existing is None:
        records.create(
            ROLE,
            role,
            {"permissions": every, "created_by": SYSTEM, "created_at": now, "updated_at": now},
        )
    elif existing.doc["permissions"] != every:
        doc = {**existing.doc, "permissions": every, "updated_at": now}
        records.update(ROLE, role, doc, expected_version=existing.version)
    records.create(
        USER,
        username,
        {
            "roles": [role],
            "password_hash": hasher.hash(password),
            "token_epoch": new_epoch(),
            "created_by": SYSTEM,
            "created_at": now,
            "updated_at": now,
        },
    )
