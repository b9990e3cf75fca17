"""The selectable script "Generate on Amazon SageMaker" of A1111's txt2img tab.

Chosen in the tab's Script dropdown, it replaces local generation: Generate sends the tab's
settings as a job to a SageMaker endpoint and shows the images in the usual gallery (see
`cloud_txt2img`). No local checkpoint or GPU is needed and nothing of A1111 is patched: a
script's `run` returning a `Processed` is A1111's own extension point.

Its controls (the values `run` receives, also by position through `/sdapi/v1/txt2img`'s
`script_args`): cloud checkpoint, VAE, LoRAs, LoRA weight and endpoint, all by name. The
lists are the signed-in WebUI user's and are filled by the refresh button, since the UI is
built once for every user at start-up. The dropdowns accept typed names too, and the
infotext's "Model" and "VAE" paste into them, so "Send to txt2img" from a cloud image
selects the same cloud models.

Importing this module loads only A1111's `modules.scripts`: gradio, requests and PIL are
imported when the UI is built or a job runs.
"""

from __future__ import annotations

import logging
from typing import Any

from modules import scripts

log = logging.getLogger("sd_webui_sagemaker")

TITLE = "Generate on Amazon SageMaker"
REFRESH_SYMBOL = "\U0001f504"  # 🔄, as A1111's refresh buttons


class SageMakerTxt2Img(scripts.Script):
    """One instance per A1111 script runner (built again on every UI reload)."""

    def __init__(self) -> None:
        super().__init__()
        self._sessions: Any = None

    def title(self) -> str:
        return TITLE

    def show(self, is_img2img: bool) -> bool:
        return not is_img2img

    def ui(self, is_img2img: bool) -> list[Any]:
        import gradio as gr

        from aws_extension.webui.cloud_txt2img import AUTOMATIC
        from aws_extension.webui.script_refresh import ChoicesRefresh

        with gr.Row():
            checkpoint = gr.Dropdown(
                label="Cloud checkpoint",
                choices=[],
                value=None,
                allow_custom_value=True,
                elem_id=self.elem_id("checkpoint"),
            )
            refresh = gr.Button(
                REFRESH_SYMBOL, elem_id=self.elem_id("refresh"), elem_classes=["tool"]
            )
        with gr.Row():
            vae = gr.Dropdown(
                label="Cloud VAE",
                choices=[AUTOMATIC],
                value=AUTOMATIC,
                allow_custom_value=True,
                elem_id=self.elem_id("vae"),
            )
            endpoint = gr.Dropdown(
                label="Endpoint",
                choices=[AUTOMATIC],
                value=AUTOMATIC,
                allow_custom_value=True,
                elem_id=self.elem_id("endpoint"),
            )
        with gr.Row():
            loras = gr.Dropdown(
                label="Cloud LoRAs (or <lora:name:weight> in the prompt)",
                choices=[],
                value=[],
                multiselect=True,
                elem_id=self.elem_id("loras"),
            )
            lora_weight = gr.Slider(
                label="LoRA weight",
                minimum=0.0,
                maximum=2.0,
                step=0.05,
                value=1.0,
                elem_id=self.elem_id("lora_weight"),
            )
        status = gr.HTML(elem_id=self.elem_id("status"))
        refresh.click(
            fn=ChoicesRefresh(self._script_sessions).on_refresh,
            inputs=[checkpoint, vae, loras, endpoint],
            outputs=[checkpoint, vae, loras, endpoint, status],
        )
        self.infotext_fields = [(checkpoint, "Model"), (vae, "VAE")]
        return [checkpoint, vae, loras, lora_weight, endpoint]

    def run(
        self,
        p: Any,
        checkpoint: str | None = None,
        vae: str | None = None,
        loras: list[str] | None = None,
        lora_weight: float = 1.0,
        endpoint: str | None = None,
    ) -> Any:
        """Generate on SageMaker; A1111 passes the controls' values in `ui()`'s order, and
        an API caller may leave out the last ones (None: automatic / none)."""
        from aws_extension.webui.cloud_txt2img import ScriptChoices, generate

        choices = ScriptChoices(
            checkpoint=checkpoint,
            vae=vae,
            loras=tuple(loras or ()),
            lora_weight=lora_weight if isinstance(lora_weight, (int, float)) else 1.0,
            endpoint=endpoint,
        )
        return generate(p, choices, self._script_sessions())

    def _script_sessions(self) -> Any:
        if self._sessions is None:
            from aws_extension.client.settings_store import SettingsStore
            from aws_extension.ui.context import UiContext
            from aws_extension.webui import options, paths
            from aws_extension.webui.script_sessions import ScriptSessions

            context = UiContext(
                store=SettingsStore(paths.settings_path()), client_options=options.client_options
            )
            self._sessions = ScriptSessions(context)
        return self._sessions
