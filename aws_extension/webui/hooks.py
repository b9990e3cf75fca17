"""Registration with A1111's script callbacks: the tab and the settings section.

`register()` runs while A1111 loads extension scripts, so it only hooks callbacks; gradio,
requests and the tab's code are imported when A1111 builds its UI. A failure inside a
callback is logged and skipped so that the WebUI always comes up, with or without the tab.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("sd_webui_sagemaker")

TAB_TITLE = "Amazon SageMaker"
TAB_ID = "sagemaker_interface"


def register() -> None:
    """Hook the tab and the settings into A1111; safe to call again after a UI reload.

    A1111 clears its callbacks before re-running extension scripts on "Reload UI", so each
    run registers exactly once.
    """
    from modules import script_callbacks

    script_callbacks.on_ui_tabs(ui_tabs)
    script_callbacks.on_ui_settings(ui_settings)


def ui_tabs() -> list[tuple[Any, str, str]]:
    """A1111's on_ui_tabs callback: `[(blocks, title, elem_id)]`, or no tab on failure."""
    try:
        from aws_extension.client.settings_store import SettingsStore
        from aws_extension.ui.context import UiContext
        from aws_extension.ui.tab import build_tab
        from aws_extension.webui import model_dirs, options, paths

        context = UiContext(
            store=SettingsStore(paths.settings_path()),
            client_options=options.client_options,
            model_dirs=model_dirs.model_dirs,
        )
        return [(build_tab(context), TAB_TITLE, TAB_ID)]
    except Exception:
        log.exception("The %s tab could not be built; the WebUI continues without it.", TAB_TITLE)
        return []


def ui_settings() -> None:
    """A1111's on_ui_settings callback: the options of Settings > Amazon SageMaker."""
    try:
        from aws_extension.webui import options

        options.add_options()
    except Exception:
        log.exception("The %s settings could not be registered.", TAB_TITLE)
