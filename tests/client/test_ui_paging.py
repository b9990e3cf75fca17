"""Cursor paging: Previous Page needs the cursors of the pages before."""

from __future__ import annotations

from aws_extension.client.api import Page
from aws_extension.ui.paging import PAGE_SIZE, PageState, load


class Pages:
    """A list endpoint over `rows`, cursors being the index of a page's first row."""

    def __init__(self, rows: list[str]) -> None:
        self.rows = rows
        self.calls: list[str | None] = []

    def __call__(self, *, limit: int, cursor: str | None) -> Page:
        self.calls.append(cursor)
        start = int(cursor or 0)
        end = start + limit
        return Page(self.rows[start:end], str(end) if end < len(self.rows) else None)


def test_forward_and_back_walk_the_cursor_stack():
    pages = Pages([f"r{i}" for i in range(PAGE_SIZE * 2 + 1)])

    first, state = load(pages, PageState())
    second, state = load(pages, state.forward())
    third, state = load(pages, state.forward())
    again, state = load(pages, state.back())

    assert (first.items[0], second.items[0], third.items, again.items[0]) == (
        "r0",
        f"r{PAGE_SIZE}",
        [f"r{PAGE_SIZE * 2}"],
        f"r{PAGE_SIZE}",
    )
    assert state.number == 2
    assert state.has_previous
    assert state.has_next


def test_the_first_and_last_pages_stop_the_buttons():
    pages = Pages(["only"])

    _, state = load(pages, PageState())

    assert (state.has_previous, state.has_next) == (False, False)
    assert state.back() == state
    assert state.forward() == state


def test_a_page_emptied_by_deletes_falls_back_to_the_one_before():
    pages = Pages([f"r{i}" for i in range(PAGE_SIZE + 1)])
    _, state = load(pages, PageState())
    _, state = load(pages, state.forward())
    del pages.rows[PAGE_SIZE:]  # the last page's only row was deleted

    page, state = load(pages, state)

    assert page.items[0] == "r0"
    assert state.number == 1
