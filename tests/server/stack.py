"""The local stack as a real process, for the server tests: tests/support/local_stack.py.

Kept as a name of its own because the server tests import it from here; the launcher itself
is shared with the client and browser tests, which start it with the server's interpreter.
"""

from __future__ import annotations

from tests.support.local_stack import (
    LAST_BANNER_LINE,
    ROOT,
    START_TIMEOUT,
    STOP_TIMEOUT,
    Stack,
    start_stack,
)

__all__ = ["LAST_BANNER_LINE", "ROOT", "START_TIMEOUT", "STOP_TIMEOUT", "Stack", "start_stack"]
