"""What the parts of the tab have in common with the connection: they follow the sign-in.

Signing in, signing out and loading the page change what every part shows, and gradio
needs every component an event may change listed when the event is wired. So each part
that depends on who is signed in is a `SessionView`: it names its components and says
what they become for a signed-in client, and when nobody is signed in.
"""

from __future__ import annotations

from typing import Any, Protocol

import gradio as gr

from aws_extension.client.api import ApiClient

#: What a handler returns: component -> new value or gr.update(...); absent ones stay.
Updates = dict[Any, Any]


class SessionView(Protocol):
    @property
    def view_outputs(self) -> list[Any]:
        """Every component `show` or `hide` may change."""

    def show(self, client: ApiClient) -> Updates:
        """The view for a freshly signed-in client (hidden if it lacks the permission)."""

    def hide(self) -> Updates:
        """The view with nobody signed in: hidden and emptied."""


class SignInHint:
    """Says where to sign in, on a sub-tab whose parts all stay hidden until one has."""

    def __init__(self, elem_id: str, text: str) -> None:
        self._elem_id = elem_id
        self._text = text

    def build(self) -> None:
        self.hint = gr.HTML(
            f'<span class="sagemaker-notice">{self._text}</span>', elem_id=self._elem_id
        )

    @property
    def view_outputs(self) -> list[Any]:
        return [self.hint]

    def show(self, client: ApiClient) -> Updates:
        return {self.hint: gr.update(visible=False)}

    def hide(self) -> Updates:
        return {self.hint: gr.update(visible=True)}
