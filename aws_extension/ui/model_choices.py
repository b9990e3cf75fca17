"""What the txt2img panel offers to pick: the Active cloud models of a type and the endpoints.

Models are labelled as A1111 labels checkpoints, `name [short hash]`, so two models of the
same name stay apart; the label -> id mapping travels in a gr.State with the page (gradio
3.41's dropdowns hold strings only), and a label the mapping lacks was listed before a
change: the user refreshes the lists.
"""

from __future__ import annotations

from collections.abc import Callable

from aws_extension.client.api import ApiClient, Page
from aws_extension.client.cloud_models import CHECKPOINT, LORA, VAE, active_models
from aws_extension.ui.tables import short_hash

#: The model types the panel picks from.
KINDS: tuple[str, ...] = (CHECKPOINT, LORA, VAE)
#: The endpoint choice that lets the server pick (InService first, then by name).
AUTOMATIC_ENDPOINT = "Automatic"
#: The VAE choice that keeps the checkpoint's own.
NO_VAE = "None (the checkpoint's own)"
#: Bound on the pages read per list: 20 x 200 is far beyond real use.
MAX_PAGES = 20
PAGE_LIMIT = 200

#: kind -> {label: model id}
Choices = dict[str, dict[str, str]]


def model_label(model: dict) -> str:
    name = str(model.get("name", ""))
    digest = short_hash(model.get("sha256"))
    return f"{name} [{digest}]" if digest else name


def every(list_page: Callable[..., Page]) -> list[dict]:
    """The items of every page of a list (bounded by `MAX_PAGES`)."""
    items: list[dict] = []
    cursor: str | None = None
    for _ in range(MAX_PAGES):
        page = list_page(limit=PAGE_LIMIT, cursor=cursor)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    return items


def model_choices(client: ApiClient) -> Choices:
    """label -> id of the Active models of each kind the user may use, by name."""
    choices: Choices = {}
    for kind in KINDS:
        models = sorted(active_models(client, kind), key=lambda m: str(m["name"]).casefold())
        choices[kind] = {model_label(m): str(m["id"]) for m in models}
    return choices


def endpoint_choices(client: ApiClient) -> list[str]:
    """`Automatic`, then the names of the endpoints the user may use."""
    names = [str(endpoint.get("name", "")) for endpoint in every(client.list_endpoints)]
    return [AUTOMATIC_ENDPOINT, *names]
