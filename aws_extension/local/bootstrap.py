"""First start: the role `admin` with every permission and the user `admin` holding it.

"First" means the records hold no user yet, so a fresh state folder gets its super admin
and a restart never replaces one (nor prints a password again).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from aws_extension.middleware.records import Records
from aws_extension.middleware.security.passwords import PasswordHasher
from aws_extension.middleware.services.bootstrap import create_super_admin, has_users

SUPER_ADMIN = "admin"
SUPER_ADMIN_ROLE = "admin"


def bootstrap(
    records: Records, hasher: PasswordHasher, clock: Callable[[], float] = time.time
) -> str | None:
    """Create the super admin if there is no user; return its new password, else None."""
    if has_users(records):
        return None
    password = secrets.token_urlsafe(15)
    create_super_admin(
        records, hasher, clock, username=SUPER_ADMIN, password=password, role=SUPER_ADMIN_ROLE
    )
    return password
