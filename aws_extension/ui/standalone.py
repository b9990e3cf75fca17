"""`python -m aws_extension ui`: the Amazon SageMaker tab in a plain gradio app.

For trying the extension and for the browser tests without installing a WebUI. The page is
laid out like A1111's (the tab's Blocks rendered inside a tab strip), so the very code paths
the WebUI uses run here, and the page loads the extension's style.css and javascript/*.js
as A1111's does (`page_scripts`). Nothing leaves the machine: gradio's analytics are off and
the theme uses local fonts instead of Google Fonts.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_PORT = 7861
#: Events served at once, as A1111 does (`demo.queue(64)`): a long upload must not hold up
#: the rest of the page (gradio's default is one at a time).
QUEUE_CONCURRENCY = 64
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
    parser.add_argument(
        "--models-dir",
        type=Path,
        default=None,
        help="folder laid out like A1111's models folder (Stable-diffusion, Lora, VAE, "
        "ControlNet, embeddings, hypernetworks inside it), for uploads from its files",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="port to listen on")
    return parser


def _queue(app: Any) -> None:
    """Turn on gradio's queue (progress bars need it) with `QUEUE_CONCURRENCY`, which gradio
    3 calls `concurrency_count` and gradio 4 `default_concurrency_limit`."""
    parameters = inspect.signature(app.queue).parameters
    if "default_concurrency_limit" in parameters:
        app.queue(default_concurrency_limit=QUEUE_CONCURRENCY)
    else:
        app.queue(concurrency_count=QUEUE_CONCURRENCY)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    # Before gradio is imported: it reads the variable at import time.
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    import gradio as gr

    from aws_extension.client.settings_store import SettingsStore
    from aws_extension.ui import page_scripts
    from aws_extension.ui.context import UiContext
    from aws_extension.ui.model_files import folder_layout, no_model_dirs
    from aws_extension.ui.tab import build_tab

    data_dir: Path = args.data_dir or default_data_dir()
    models_dir: Path | None = args.models_dir.resolve() if args.models_dir else None
    context = UiContext(
        store=SettingsStore(data_dir / "sagemaker" / "settings.json"),
        model_dirs=(lambda: folder_layout(models_dir)) if models_dir else no_model_dirs,
    )
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
    _queue(app)
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
            # A1111 puts the extension's javascript/*.js into its page; so does this.
            app_kwargs={"middleware": [page_scripts.middleware()]},
        )
    except OSError as exc:
        print(f"Cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
