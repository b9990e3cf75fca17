"""The cloud models and endpoints a user may generate with, by name, and back to ids.

Forms show models by name (a checkpoint name is what A1111 users know, and what infotexts
carry), while a job names them by id. Names are looked up when a job is made rather than
kept from when a list was shown, so a model renamed, replaced or deleted since is noticed
with a sentence instead of running with something else.

A LoRA can also be asked for the A1111 way, by a `<lora:name:weight>` tag in the prompt: a
tag whose name is a cloud LoRA's file stem selects it (the endpoint keeps the tag's weight).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from aws_extension import contract
from aws_extension.client import errors
from aws_extension.client.api import ApiClient, Page
from aws_extension.client.jobs import LoraChoice

CHECKPOINT = "Stable-diffusion"
LORA = "Lora"
VAE = "VAE"
#: Items per page and most pages read for one list: 4000 models of a type is far beyond use.
PAGE_SIZE = 200
MAX_PAGES = 20
#: A1111's extra-network prompt tag, `<kind:name[:multiplier...]>`.
_TAG = re.compile(r"<(\w+):([^>:]+)(?::([^>:]*))?[^>]*>")


class UnknownModel(errors.ApiError):
    """A model named in a form or infotext is not an `Active` model the user may use."""


@dataclass(frozen=True)
class CloudChoices:
    """Names for the dropdowns, sorted: `Active` models by type, and endpoints."""

    checkpoints: list[str]
    vaes: list[str]
    loras: list[str]
    endpoints: list[str]
    #: Endpoints in service; the others may still be starting.
    in_service: list[str]


def list_choices(client: ApiClient) -> CloudChoices:
    """What the signed-in user may generate with."""
    endpoints = _every(client.list_endpoints)
    return CloudChoices(
        checkpoints=_names(active_models(client, CHECKPOINT)),
        vaes=_names(active_models(client, VAE)),
        loras=_names(active_models(client, LORA)),
        endpoints=sorted((e["name"] for e in endpoints), key=str.casefold),
        in_service=sorted(
            (e["name"] for e in endpoints if e.get("status") == contract.ENDPOINT_IN_SERVICE),
            key=str.casefold,
        ),
    )


def active_models(client: ApiClient, model_type: str) -> list[dict]:
    """Every `Active` model of `model_type` the user may use."""

    def page(limit: int, cursor: str | None) -> Page:
        return client.list_checkpoints(
            type=model_type, status=contract.CHECKPOINT_ACTIVE, limit=limit, cursor=cursor
        )

    return _every(page)


def find_model(client: ApiClient, model_type: str, name: str) -> dict:
    """The `Active` model of `model_type` named `name` (any case), or `UnknownModel`.

    A checkpoint may be given as A1111 writes it in infotexts and dropdowns, with its short
    hash after the name (`model.safetensors [0123456789]`); the hash must then match.
    """
    wanted, short_hash = _split_hash(name.strip())
    page = client.list_checkpoints(
        type=model_type, status=contract.CHECKPOINT_ACTIVE, name=wanted, limit=PAGE_SIZE
    )
    for matches in (
        lambda model: model["name"].casefold() == wanted.casefold(),
        lambda model: stem(model["name"]).casefold() == wanted.casefold(),
    ):
        for model in page.items:
            if matches(model) and str(model.get("sha256", "")).startswith(short_hash or ""):
                return model
    raise UnknownModel(
        f"No {_KIND[model_type]} named {name!r} is ready in the cloud for you: refresh the "
        "list, or upload it in Amazon SageMaker > Cloud Models Management."
    )


def lora_choices(
    loras: Iterable[dict], chosen: Iterable[str], prompt: str, weight: float
) -> tuple[tuple[LoraChoice, ...], list[str]]:
    """The LoRAs of a job: those `chosen` by name (at `weight`) and those the prompt tags.

    Returns the choices and the tagged names no cloud LoRA has (A1111 skips an unknown LoRA
    too; the caller tells the user). Raises `UnknownModel` for a chosen name not found.
    """
    by_name = {model["name"].casefold(): model for model in loras}
    by_stem = {stem(model["name"]).casefold(): model for model in loras}
    picked: dict[str, LoraChoice] = {}
    for name in chosen:
        model = by_name.get(name.casefold()) or by_stem.get(name.casefold())
        if model is None:
            raise UnknownModel(
                f"No LoRA named {name!r} is ready in the cloud for you: refresh the list, or "
                "upload it in Amazon SageMaker > Cloud Models Management."
            )
        picked[model["id"]] = LoraChoice(model["id"], weight)
    missing: list[str] = []
    for tagged in tagged_loras(prompt):
        model = by_stem.get(tagged.casefold()) or by_name.get(tagged.casefold())
        if model is None:
            missing.append(tagged)
        elif model["id"] not in picked:
            picked[model["id"]] = LoraChoice(model["id"], _tag_weight(prompt, tagged))
    return tuple(picked.values()), missing


def tagged_loras(prompt: str) -> list[str]:
    """The names of the `<lora:...>` tags of a prompt, in order, each once."""
    names: list[str] = []
    for kind, name, _weight in _TAG.findall(prompt):
        if kind == "lora" and name not in names:
            names.append(name)
    return names


def stem(name: str) -> str:
    """A model file's name without its extension, as A1111 names LoRAs in tags."""
    return PurePosixPath(name).stem if "." in name else name


_KIND = {CHECKPOINT: "checkpoint", LORA: "LoRA", VAE: "VAE"}
_HASH_SUFFIX = re.compile(r"^(.*\S)\s+\[([0-9a-fA-F]{8,64})\]$")


def _split_hash(name: str) -> tuple[str, str | None]:
    match = _HASH_SUFFIX.match(name)
    if match is None:
        return name, None
    return match.group(1), match.group(2).lower()


def _tag_weight(prompt: str, name: str) -> float:
    for kind, tagged, weight in _TAG.findall(prompt):
        if kind == "lora" and tagged == name:
            try:
                return float(weight)
            except ValueError:
                return 1.0
    return 1.0


def _names(models: list[dict]) -> list[str]:
    return sorted((m["name"] for m in models), key=str.casefold)


def _every(list_page: Callable[[int, str | None], Page]) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(MAX_PAGES):
        page = list_page(PAGE_SIZE, cursor)
        items += page.items
        cursor = page.next_cursor
        if cursor is None:
            break
    return items
