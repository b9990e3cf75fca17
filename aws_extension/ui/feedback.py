"""Words the tab shows: success and failure lines for the status areas.

Status areas are gr.HTML, not Markdown: what they show comes partly from outside (server
details, names users typed) and is escaped here, which plain HTML allows exactly; Markdown
would also need escaping of its own syntax, and gradio 3.41 turns URLs into links before
escapes apply, so an escaped URL would show its backslashes.
"""

from __future__ import annotations

import html

from aws_extension.contract import PERMISSION_LABELS


class UiError(Exception):
    """A problem the tab finds before calling the API (an empty field, no session)."""


def escape(text: object) -> str:
    """`text` as literal HTML text: no tags, no entities."""
    return html.escape(str(text), quote=True)


def failure(exc: Exception) -> str:
    """A failed action in words: the error's own sentence, which says what to do."""
    return f'<span class="sagemaker-error">Error: {escape(exc)}</span>'


def success(text: str) -> str:
    """A finished action; `text` is HTML, escaped where it quotes names or server words."""
    return f'<span class="sagemaker-success">{text}</span>'


def notice(text: str) -> str:
    """Neither success nor failure (signed out, nothing configured yet); `text` is HTML."""
    return f'<span class="sagemaker-notice">{text}</span>'


def permission_words(permissions: list[str]) -> str:
    """`role:all (manage roles), ...` in the contract's order, unknown ones as they are."""
    known = [p for p in PERMISSION_LABELS if p in permissions]
    unknown = sorted(set(permissions) - set(known))
    words = [f"{p} ({PERMISSION_LABELS[p]})" for p in known] + unknown
    return ", ".join(words) if words else "none"
