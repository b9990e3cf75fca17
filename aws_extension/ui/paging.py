"""Cursor paging of the tables.

The API hands out only a `next_cursor`, so going back needs the cursors of the pages seen
before: a stack of them, kept in a `gr.State` so every browser tab pages on its own. A
cursor is only valid for the filters it was made with, so the filters travel in the same
state: a new filter starts a new stack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from aws_extension.client.api import Page

#: Rows per page; also what gradio 3.41's table shows before paginating on its own.
PAGE_SIZE = 20


@dataclass(frozen=True)
class PageState:
    """Where a table is: the cursors that led to each page so far, the last one shown, and
    the filters (query parameters of the list call) all of them were made with."""

    cursors: tuple[str | None, ...] = (None,)
    next_cursor: str | None = None
    filters: dict[str, str] = field(default_factory=dict)

    @property
    def number(self) -> int:
        return len(self.cursors)

    @property
    def has_previous(self) -> bool:
        return len(self.cursors) > 1

    @property
    def has_next(self) -> bool:
        return self.next_cursor is not None

    def forward(self) -> PageState:
        if self.next_cursor is None:
            return self
        return replace(self, cursors=(*self.cursors, self.next_cursor), next_cursor=None)

    def back(self) -> PageState:
        if not self.has_previous:
            return self
        return replace(self, cursors=self.cursors[:-1], next_cursor=None)


ListPage = Callable[..., Page]


def load(list_page: ListPage, state: PageState) -> tuple[Page, PageState]:
    """Fetch the page `state` points at.

    A page that came back empty while earlier ones exist (its last rows were deleted) is
    replaced by the page before it, so a table never shows "nothing" when there is data.
    """
    while True:
        page = list_page(limit=PAGE_SIZE, cursor=state.cursors[-1], **state.filters)
        if page.items or not state.has_previous:
            return page, replace(state, next_cursor=page.next_cursor)
        state = state.back()
