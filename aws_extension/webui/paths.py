"""Where the extension keeps its settings inside a WebUI installation.

The settings file goes into the WebUI's data folder (what `--data-dir` points to), not into
the extension's own folder, so updating or re-cloning the extension keeps the connection,
and several WebUIs sharing one extension checkout keep theirs apart.
"""

from __future__ import annotations

from pathlib import Path

#: The extension's checkout: the last resort when the WebUI does not tell its data folder.
EXTENSION_ROOT = Path(__file__).resolve().parents[2]


def data_dir() -> Path:
    """The WebUI's data folder.

    `modules.paths_internal.data_path` exists in every supported A1111 (1.6-1.10) and in
    Forge; `shared.cmd_opts.data_dir` is the same value one step later in start-up, kept as a
    fallback for forks that moved the first.
    """
    try:
        from modules import paths_internal

        return Path(paths_internal.data_path)
    except (ImportError, AttributeError):
        pass
    try:
        from modules import shared

        configured = getattr(shared.cmd_opts, "data_dir", None)
    except (ImportError, AttributeError):
        configured = None
    return Path(configured) if configured else EXTENSION_ROOT


def settings_path() -> Path:
    """`<data>/sagemaker/settings.json`: the API URL and token, and each user's session."""
    return data_dir() / "sagemaker" / "settings.json"
