"""Words for uploads and imports: the progress bar's line while a file travels, and the
list of what became of each file once the button's work is done."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_extension.client.uploader import UploadProgress
from aws_extension.ui.feedback import escape
from aws_extension.ui.tables import size_words

#: What each kind of outcome is called in the list, and the status class it is shown with.
ACTIVE = "Active"
SKIPPED = "Skipped: duplicate"
FAILED = "Failed"
IMPORTING = "Importing"
_CLASSES = {
    ACTIVE: "sagemaker-success",
    SKIPPED: "sagemaker-notice",
    FAILED: "sagemaker-error",
    IMPORTING: "sagemaker-notice",
}
_PHASES = {
    "hashing": "checking for a duplicate (SHA-256)",
    "uploading": "uploading",
    "completing": "completing",
}


@dataclass(frozen=True)
class Outcome:
    """What became of one file or URL: `kind` is one of the four above, `words` plain text."""

    name: str
    kind: str
    words: str


def outcome_list(outcomes: list[Outcome]) -> str:
    """One line per file, then a count, as HTML (everything quoted is escaped)."""
    lines = [
        f'<li><b>{escape(o.name)}</b>: <span class="{_CLASSES[o.kind]}">{escape(o.kind)}</span>'
        f"{' — ' + escape(o.words) if o.words else ''}</li>"
        for o in outcomes
    ]
    counts = [f"{sum(o.kind == kind for o in outcomes)} {kind.lower()}" for kind in _CLASSES]
    summary = ", ".join(c for c in counts if not c.startswith("0 "))
    return f'<ul class="sagemaker-results">{"".join(lines)}</ul><p>{escape(summary)}.</p>'


def progress_words(report: UploadProgress, index: int, count: int) -> str:
    """`File 1 of 3: x.safetensors — uploading 12.0 MiB of 40.0 MiB at 35.2 MiB/s, 1 s left`."""
    phase = _PHASES.get(report.phase, report.phase)
    words = (
        f"File {index} of {count}: {report.name} — {phase} "
        f"{size_words(report.bytes_done)} of {size_words(report.bytes_total)}"
    )
    if report.rate:
        words += f" at {size_words(report.rate)}/s"
    if report.eta is not None:
        words += f", {duration_words(report.eta)} left"
    return words


def duration_words(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


class FileProgress:
    """The uploader's progress callback for one file of several, feeding gradio's bar.

    `progress` is gradio's `gr.Progress` (or anything called the same way): the bar shows
    this file's fraction, so each file gets a bar of its own, and the line says which file.
    """

    def __init__(self, progress: Callable[..., Any], index: int, count: int) -> None:
        self._progress = progress
        self._index = index
        self._count = count

    def __call__(self, report: UploadProgress) -> None:
        self._progress(report.fraction, desc=progress_words(report, self._index, self._count))
