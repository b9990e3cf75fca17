"""What the tab needs from its host, injected when the tab is built."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_extension.client.api import ClientOptions
from aws_extension.client.settings_store import SettingsStore
from aws_extension.ui.model_files import ModelDirs, no_model_dirs


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
    settings applies at the next sign-in without a restart. `model_dirs` names the folders
    of each model type (A1111's, with its command-line overrides); it is called whenever the
    upload form lists files, so folders made after start-up are found.
    """

    store: SettingsStore
    client_options: Callable[[], ClientOptions] = ClientOptions
    webui_user: Callable[[Any], str] = request_user
    model_dirs: ModelDirs = no_model_dirs

    @property
    def upload_state_dir(self) -> Path:
        """Where interrupted uploads keep what they need to resume: next to the settings."""
        return self.store.path.parent / "uploads"
