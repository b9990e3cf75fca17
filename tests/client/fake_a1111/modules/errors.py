"""Like A1111's: errors of extensions are printed to stderr, never raised."""

import sys
import traceback


def report(message: str, *, exc_info: bool = False) -> None:
    print("***", message, file=sys.stderr)
    if exc_info:
        traceback.print_exc()


def display(e: Exception, task: str, *, full_traceback: bool = False) -> None:
    print(f"{task or 'error'}: {type(e).__name__}", file=sys.stderr)
    traceback.print_exc()
