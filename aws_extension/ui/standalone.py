"""`python -m aws_extension ui`: the Amazon SageMaker tab in a plain gradio app.

For trying the extension and for the browser tests without installing a WebUI. The page is
laid out like A1111's (the tab's Blocks rendered inside a tab strip), so the very code paths
the WebUI uses run here. Nothing leaves the machine: gradio's analytics are off and the
theme uses local fonts instead of Google Fonts.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

DEFAULT_PORT = 7861
#: A1111 loads the extension's style.css by itself; the standalone app has to pass it.
STYLE_CSS = Path(__file__).resolve().parents[2] / "style.css"


def default_data_dir() -> Path:
    """`$XDG_DATA_HOME/sd-webui-sagemaker/webui` (usually ~/.local/share/...)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "sd-webui-sagemaker" / "webui"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aws_extension ui",
        description="Serve the Amazon SageMaker tab in a plain gradio app.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder of the settings (sagemaker/settings.json inside it); "
        f"default: {default_data_dir()}",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Before gradio is imported: it reads the variable at import time.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr

    from aws_extension.client.settings_store import SettingsStore
    from aws_extension.ui.context import UiContext
    from aws_extension.ui.tab import build_tab

    data_dir: Path = args.data_dir or default_data_dir()
    context = UiContext(store=SettingsStore(data_dir / "sagemaker" / "settings.json"))
    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"],
        font_mono=["ui-monospace", "Consolas", "monospace"],
    )
    # Built outside the page's Blocks and rendered into it, as A1111 does with its tabs: a
    # Blocks created inside another one would be placed there once more by gradio itself.
    tab = build_tab(context)
    css = STYLE_CSS.read_text(encoding="utf-8") if STYLE_CSS.exists() else None
    with (
        gr.Blocks(title="Amazon SageMaker", theme=theme, css=css, analytics_enabled=False) as app,
        gr.Tabs(),
        gr.Tab("Amazon SageMaker", id="sagemaker_interface", elem_id="tab_sagemaker_interface"),
    ):
        tab.render()
    app.queue()
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"Warning: serving on {args.host} lets anyone who can reach it act as the signed-in "
            "user (the page has no login of its own).",
            file=sys.stderr,
        )
    print(f"Amazon SageMaker tab, settings in {data_dir}; press Ctrl-C to stop.", flush=True)
    try:
        app.launch(
            server_name=args.host,
            server_port=args.port,
            prevent_thread_lock=False,
            inbrowser=False,
            show_api=False,
        )
    except OSError as exc:
        print(f"Cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
