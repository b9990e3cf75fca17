"""The glue to AUTOMATIC1111: the only package that imports the WebUI's `modules.*`.

Everything A1111-specific (its callbacks, its settings, its data folder) is read here and
handed to `aws_extension.ui` as plain values, so the tab itself can also run in the
standalone app and in tests without a WebUI.
"""

from __future__ import annotations

from aws_extension.webui.hooks import register

__all__ = ["register"]
