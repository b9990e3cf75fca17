"""Words the tab shows: success and failure lines for the status areas.

Everything shown comes partly from outside (server details, names users typed), and gradio
renders it as Markdown, so it is escaped: a role named `<img onerror=...>` stays text.
"""

from __future__ import annotations

import html
import re

from aws_extension.contract import PERMISSION_LABELS

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~])")


class UiError(Exception):
    """A problem the tab finds before calling the API (an empty field, no session)."""


def escape(text: object) -> str:
    """`text` as literal Markdown: no HTML, no emphasis, no links."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(str(text), quote=False))


def failure(exc: Exception) -> str:
    """A failed action in words: the error's own sentence, which says what to do."""
    return f"❌ {escape(exc)}"


def success(text: str) -> str:
    """A finished action; `text` must already be escaped where it quotes user input."""
    return f"✅ {text}"


def permission_words(permissions: list[str]) -> str:
    """`role:all (manage roles), ...` in the contract's order, unknown ones as they are."""
    known = [p for p in PERMISSION_LABELS if p in permissions]
    unknown = sorted(set(permissions) - set(known))
    words = [f"{p} ({PERMISSION_LABELS[p]})" for p in known] + unknown
    return ", ".join(words) if words else "none"
