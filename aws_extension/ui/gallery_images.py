"""Images of jobs as the tab's galleries take them: PIL images with a caption.

A PIL image rather than a file path works the same in gradio 3.41 and 4.x, and keeps its
PNG text chunks: the infotext goes into the `parameters` chunk, where A1111 writes it, so a
downloaded image dropped into the WebUI's PNG Info tab shows how it was made.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image, UnidentifiedImageError

#: The longest side of a history thumbnail, in pixels.
THUMBNAIL_SIZE = 192
#: What stands for a job without an image (queued, running, failed or cancelled).
PLACEHOLDER_COLOUR = (128, 128, 128)

GalleryItem = tuple[Image.Image, str]


def image(data: bytes, infotext: str | None = None) -> Image.Image:
    """The PNG (or other image) in `data`, loaded, with `infotext` as its `parameters`.

    Raises ValueError when the bytes are no image.
    """
    try:
        picture = Image.open(io.BytesIO(data))
        picture.load()
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not an image ({len(data)} bytes)") from exc
    if infotext and not picture.info.get("parameters"):
        picture.info["parameters"] = infotext
    return picture


def seed_caption(seed: object) -> str:
    return f"Seed {seed}" if isinstance(seed, int) and not isinstance(seed, bool) else ""


def gallery(
    images: Sequence[bytes], infotexts: Sequence[str], seeds: Sequence[object]
) -> list[GalleryItem]:
    """One captioned gallery item per image ("Seed 1234"), in order; what is no image shows
    as the placeholder, so item n still belongs to infotext n."""
    items: list[GalleryItem] = []
    for index, data in enumerate(images):
        infotext = infotexts[index] if index < len(infotexts) else None
        seed = seeds[index] if index < len(seeds) else None
        try:
            items.append((image(data, infotext), seed_caption(seed)))
        except ValueError:
            items.append((placeholder(), "not an image"))
    return items


def thumbnail(data: bytes) -> Image.Image:
    """A small copy of the image in `data`; the placeholder when it is no image."""
    try:
        picture = image(data)
    except ValueError:
        return placeholder()
    small = picture.convert("RGB")
    small.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    return small


def placeholder() -> Image.Image:
    return Image.new("RGB", (THUMBNAIL_SIZE, THUMBNAIL_SIZE), PLACEHOLDER_COLOUR)
