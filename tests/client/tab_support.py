"""Building the tab and reading what its handlers return, for the handler tests.

Handlers are called as gradio would call them: with the input values, a request of a WebUI
without logins, and whatever event data they take.
"""

from __future__ import annotations

from types import SimpleNamespace

import gradio as gr

from aws_extension.ui.sessions import UserSessions
from aws_extension.ui.tab import TabPanels, build_panels

REQUEST = SimpleNamespace(username=None)  # a WebUI without logins


def build(ui_context) -> TabPanels:
    with gr.Blocks() as blocks:
        return build_panels(ui_context, UserSessions(ui_context), blocks)


def visible(update: object) -> bool | None:
    return update.get("visible") if isinstance(update, dict) else None


def cells(update: dict) -> list[list[str]]:
    return update["data"]


def names(update: dict) -> list[str]:
    return [row[0] for row in cells(update)]


def connect(tab: TabPanels, server, **given: str) -> dict:
    values = {
        "api_url": server.url,
        "api_token": server.api_token,
        "username": server.username,
        "password": server.password,
        **given,
    }
    return tab.connection.on_connect(**values, request=REQUEST)


def secrets_shown(updates: dict, *secrets: str) -> bool:
    """Whether any secret occurs in what a handler sends to the page (checked as a bool, so
    a failing assertion cannot print it)."""
    text = repr(updates)
    return any(secret and secret in text for secret in secrets)
