"""Numbers typed into the tab's forms, checked before they go to the API."""

from __future__ import annotations

from aws_extension.ui.feedback import UiError


def whole_number(value: object, what: str) -> int:
    """A count typed into a gr.Number or set on a slider (a float, or None when emptied) as
    an int; words naming `what` when it is none."""
    if value is None or value == "":
        raise UiError(f"Enter the {what}.")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise UiError(f"The {what} must be a whole number.") from None
    if not number.is_integer():
        raise UiError(f"The {what} must be a whole number, not {number:g}.")
    return int(number)
