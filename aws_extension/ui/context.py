"""What the tab needs from its host, injected when the tab is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_extension.client.api import ClientOptions
from aws_extension.client.settings_store import SettingsStore


def request_user(request: Any) -> str:
    """The WebUI user behind a gradio request: the login name, "" when there are no logins.

    A1111 started with --gradio-auth puts the login name in `request.username`; without it
    every visitor is the same user, "", and shares one middleware session.
    """
    return getattr(request, "username", None) or ""


@dataclass(frozen=True)
class UiContext:
    """The host's side of the tab.

    `client_options` is called for every new client, so a changed timeout in the WebUI's
    settings applies at the next sign-in without a restart.
    """

    store: SettingsStore
    client_options: Callable[[], ClientOptions] = ClientOptions
    webui_user: Callable[[Any], str] = request_user
