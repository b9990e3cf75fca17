"""A1111 entry point of sd-webui-sagemaker: the txt2img script "Generate on Amazon SageMaker".

A1111 executes every file in an extension's scripts/ folder and registers each class derived
from `modules.scripts.Script` that the file's namespace holds, so this shim holds exactly one:
the script's class, imported from the `aws_extension` package. Like scripts/sagemaker_tab.py it
stays cheap (no gradio, requests or PIL at import time) and never raises: a failure is logged
and the WebUI starts without the script.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def _script_class() -> type | None:
    # A1111 puts the extension folder on sys.path while it loads scripts, but forks and
    # tools that exec scripts directly may not; the package must be importable either way.
    root = str(Path(__file__).resolve().parent.parent)
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        from aws_extension.webui.txt2img_script import SageMakerTxt2Img

        return SageMakerTxt2Img
    except Exception:
        logging.getLogger("sd_webui_sagemaker").exception(
            "sd-webui-sagemaker could not load its txt2img script; the WebUI continues without it."
        )
        return None


SageMakerTxt2Img = _script_class()
