"""The extension's entries in Settings > Amazon SageMaker, and reading them back.

Only non-secret network behaviour lives here: A1111 serves its options to anyone who can
reach `/sdapi/v1/options` and writes them to config.json, so the API token and sessions stay
in the extension's own settings file (see `paths.settings_path`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aws_extension.client.api import ClientOptions

SECTION = ("sagemaker", "Amazon SageMaker")


@dataclass(frozen=True)
class NumberOption:
    """One numeric setting, shown as a slider; values outside its range fall back to default."""

    key: str
    default: float
    label: str
    minimum: float
    maximum: float
    step: float

    def accept(self, value: object) -> float:
        """The value if it is a number within range, else the default.

        config.json is hand-editable and A1111 does not validate it, so a bad entry must not
        turn into, say, a zero timeout that makes every request fail at once.
        """
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return self.default
        if not math.isfinite(value) or not self.minimum <= value <= self.maximum:
            return self.default
        return float(value)


_DEFAULTS = ClientOptions()

REQUEST_TIMEOUT = NumberOption(
    "sagemaker_request_timeout",
    _DEFAULTS.timeout,
    "Request timeout: seconds to wait for the API to answer",
    5,
    300,
    5,
)
CONNECT_TIMEOUT = NumberOption(
    "sagemaker_connect_timeout",
    _DEFAULTS.connect_timeout,
    "Connect timeout: seconds to wait for a connection to the API",
    1,
    60,
    1,
)
RETRIES = NumberOption(
    "sagemaker_retries",
    _DEFAULTS.retries,
    "Retries of a request that may safely be repeated (reads, updates, deletes)",
    0,
    10,
    1,
)
# Read by the tabs that follow jobs (inference, training); registered now so the settings
# page is complete from the first release.
POLL_INTERVAL = NumberOption(
    "sagemaker_poll_interval",
    2.0,
    "Poll interval: seconds between status checks of running jobs",
    0.5,
    30,
    0.5,
)

OPTIONS: tuple[NumberOption, ...] = (REQUEST_TIMEOUT, CONNECT_TIMEOUT, RETRIES, POLL_INTERVAL)


def add_options() -> None:
    """Register the options; called from A1111's `on_ui_settings`, when gradio is loaded."""
    import gradio as gr
    from modules import shared

    for option in OPTIONS:
        shared.opts.add_option(
            option.key,
            shared.OptionInfo(
                option.default,
                option.label,
                gr.Slider,
                {"minimum": option.minimum, "maximum": option.maximum, "step": option.step},
                section=SECTION,
            ),
        )


def read(option: NumberOption) -> float:
    """The option's current value; its default before the settings page registered it."""
    from modules import shared

    opts = getattr(shared, "opts", None)
    return option.accept(getattr(opts, option.key, option.default))


def client_options() -> ClientOptions:
    """ClientOptions from the current settings, read per call so changes apply at once."""
    return ClientOptions(
        timeout=read(REQUEST_TIMEOUT),
        connect_timeout=read(CONNECT_TIMEOUT),
        retries=round(read(RETRIES)),
        backoff=_DEFAULTS.backoff,
    )
