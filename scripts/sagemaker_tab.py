"""A1111 entry point of sd-webui-sagemaker: registers the Amazon SageMaker tab.

A1111 executes every file in an extension's scripts/ folder at start-up and on "Reload UI".
This shim stays tiny and cheap (no gradio, no requests at import time) and never raises: an
extension that breaks would take the whole WebUI down with it, so a failure is logged and
the WebUI starts without the tab. The real code lives in the `aws_extension` package.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def _register() -> None:
    # A1111 puts the extension folder on sys.path while it loads scripts, but forks and
    # tools that exec scripts directly may not; the package must be importable either way.
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        from aws_extension.webui import register

        register()
    except Exception:
        logging.getLogger("sd_webui_sagemaker").exception(
            "sd-webui-sagemaker could not register its tab; the WebUI continues without it."
        )


_register()
