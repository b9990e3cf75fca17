"""A job's images in a gallery, with the infotext of the image picked there: what the
txt2img panel shows of the job it ran, and the history of the job picked in it."""

from __future__ import annotations

from typing import Any

import gradio as gr

from aws_extension.ui.views import Updates


class JobImages:
    """Mixed into a panel: `build_images` makes `gallery`, `infotext` and `infotexts` (the
    infotext of every image, so picking one needs no call to the server)."""

    def build_images(self, prefix: str, label: str, **layout: Any) -> None:
        """The components, with elem_ids `<prefix>_gallery` and `<prefix>_infotext`;
        `layout` goes to the gallery (columns, height)."""
        self.gallery = gr.Gallery(
            label=label, object_fit="contain", elem_id=f"{prefix}_gallery", **layout
        )
        self.infotext = gr.Textbox(
            label="Generation info",
            lines=3,
            interactive=False,
            show_copy_button=True,
            elem_id=f"{prefix}_infotext",
        )
        self.infotexts = gr.State([])

    def wire_images(self) -> None:
        self.gallery.select(self.on_image, inputs=[self.infotexts], outputs=[self.infotext])

    def images_shown(self, items: list[Any], infotexts: list[str]) -> Updates:
        """The gallery holding `items`, the first image's infotext shown; empty lists clear it."""
        return {
            self.gallery: items,
            self.infotext: infotexts[0] if infotexts else "",
            self.infotexts: infotexts,
        }

    def on_image(self, infotexts: list[str], evt: gr.SelectData) -> Updates:
        index = evt.index
        if isinstance(index, int) and 0 <= index < len(infotexts):
            return {self.infotext: infotexts[index]}
        return {}
