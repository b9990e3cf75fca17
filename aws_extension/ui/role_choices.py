"""The role names offered where a user picks roles (a user's roles, a model's readers).

`GET /roles` is open to holders of `role:all` or `user:all` only; everyone else types role
names instead of picking them.
"""

from __future__ import annotations

import re
from typing import Any

import gradio as gr

from aws_extension.client.api import ApiClient
from aws_extension.client.errors import ApiError
from aws_extension.contract import PERMISSION_ROLE, PERMISSION_USER

#: Bound on the pages read to offer role choices: 20 x 200 roles is far beyond real use.
MAX_ROLE_PAGES = 20


def can_list_roles(client: ApiClient) -> bool:
    permissions = client.permissions
    return PERMISSION_ROLE in permissions or PERMISSION_USER in permissions


def role_choices(client: ApiClient, **changes: Any) -> Any:
    """An update offering every role's name, with `changes` to the same component (say,
    `visible`); when the roles cannot be read, only the changes."""
    names: list[str] = []
    cursor: str | None = None
    try:
        for _ in range(MAX_ROLE_PAGES):
            page = client.list_roles(limit=200, cursor=cursor)
            names += [str(item.get("name", "")) for item in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    except ApiError:
        return gr.update(**changes)
    return gr.update(choices=names, **changes)


def role_names_typed(text: str) -> list[str]:
    """Role names as typed by someone who may not list the roles: commas or spaces apart
    (a role name holds neither)."""
    return [name for name in re.split(r"[,\s]+", text or "") if name]
