"""`python -m aws_extension upload PATH... --type Lora`: upload model files from a shell.

Where the API is and who signs in, in this order:

1. `--api-url` (or `SAGEMAKER_API_URL`): the API token comes from `SAGEMAKER_API_TOKEN` or a
   hidden prompt, and `--username` (or `SAGEMAKER_USERNAME`) signs in with a password asked
   by a hidden prompt. Secrets never go on the command line, where `ps` shows them to anyone.
2. Otherwise the settings file the tab writes (`--settings`, default: that of `python -m
   aws_extension ui`; inside a WebUI it is `<data dir>/sagemaker/settings.json`): its API URL
   and token, and the session the tab keeps for `--webui-user` (so no password is needed),
   or `--username` and a password prompt.

Interrupted uploads resume when the same command runs again (states in `--state-dir`,
default: `uploads/` beside the settings file). Progress is a tqdm bar on a terminal and
plain lines otherwise (or when tqdm is not installed). Exit status: 0 when every file is
in the cloud (uploaded, or skipped because its content was there already), 1 when a file
failed, 2 for a usage or sign-in problem, 130 when interrupted.

Imports only the client side (requests) and, when there is a terminal, tqdm.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TextIO

from aws_extension import contract
from aws_extension.client import errors
from aws_extension.client.api import ApiClient, ClientOptions
from aws_extension.client.settings_store import SettingsStore
from aws_extension.client.transfer import UploadProgress
from aws_extension.client.uploader import SKIPPED, Uploader, UploadFailed
from aws_extension.ui.standalone import default_data_dir
from aws_extension.ui.tables import size_words

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
#: Seconds between two plain progress lines of one file.
LINE_INTERVAL = 5.0


class UsageError(Exception):
    """A problem the user fixes by changing the command line or signing in."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aws_extension upload",
        description="Upload model files to the sd-webui-sagemaker cloud (resumable).",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files to upload")
    parser.add_argument(
        "--type",
        required=True,
        choices=contract.MODEL_TYPES,
        metavar="TYPE",
        help=f"model type, as A1111's folder: {', '.join(contract.MODEL_TYPES)}",
    )
    parser.add_argument("--name", help="model name (one file only; default: the file's name)")
    parser.add_argument(
        "--roles",
        help="comma-separated roles allowed to use the models (default: the server's default)",
    )
    parser.add_argument("--workers", type=int, default=4, help="parts sent at once (default 4)")
    parser.add_argument(
        "--hash-first",
        action="store_true",
        help="read each file for its SHA-256 before sending, so files already in the cloud "
        "are skipped without sending them (costs one extra read)",
    )
    parser.add_argument(
        "--settings",
        type=Path,
        default=None,
        help=f"the tab's settings file (default: {default_settings_path()})",
    )
    parser.add_argument(
        "--webui-user",
        default="",
        help="whose stored session to use from the settings file (default: '' = no WebUI login)",
    )
    parser.add_argument("--api-url", help="API URL (or SAGEMAKER_API_URL); token from env")
    parser.add_argument("--username", help="sign in as this user (asks for the password)")
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where interrupted uploads keep their resume state "
        "(default: uploads/ beside the settings file)",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="API call timeout, seconds")
    return parser


def default_settings_path() -> Path:
    """The settings file of the standalone tab (`python -m aws_extension ui`)."""
    return default_data_dir() / "sagemaker" / "settings.json"


# -- signing in ---------------------------------------------------------------------------------


def connect(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    ask_secret: Callable[[str], str] = getpass.getpass,
) -> ApiClient:
    """A signed-in client, per the order in the module's docstring; raises UsageError."""
    options = ClientOptions(timeout=args.timeout)
    api_url = args.api_url or environ.get("SAGEMAKER_API_URL")
    if api_url:
        token = environ.get("SAGEMAKER_API_TOKEN") or ask_secret("API token: ")
        username = args.username or environ.get("SAGEMAKER_USERNAME")
        if not username:
            raise UsageError("Pass --username (or set SAGEMAKER_USERNAME) to sign in.")
        client = ApiClient(api_url, token, options=options)
        return _sign_in(client, username, ask_secret)
    settings = args.settings or default_settings_path()
    store = SettingsStore(settings)
    connection = store.connection()
    if connection is None:
        raise UsageError(
            f"No API URL and token in {settings}: save them in the tab's connection settings, "
            "pass --settings with the WebUI's sagemaker/settings.json, or pass --api-url and "
            "set SAGEMAKER_API_TOKEN."
        )
    stored = store.user_session(args.webui_user)
    if args.username and (stored is None or stored.username != args.username):
        client = ApiClient(connection.api_url, connection.api_token, options=options)
        return _sign_in(client, args.username, ask_secret)
    if stored is None:
        raise UsageError(
            f"Nobody is signed in in {settings}: sign in in the tab first, or pass --username."
        )

    def keep(session: dict) -> None:
        store.save_user_session(args.webui_user, stored.username, session["refresh_token"])

    client = ApiClient(
        connection.api_url,
        connection.api_token,
        options=options,
        refresh_token=stored.refresh_token,
        on_session=keep,
    )
    try:
        client.me()
    except errors.NotAuthenticated:
        client.close()
        raise UsageError(
            f"The session of {stored.username} stored in {settings} has expired: sign in in "
            "the tab again, or pass --username."
        ) from None
    return client


def _sign_in(client: ApiClient, username: str, ask_secret: Callable[[str], str]) -> ApiClient:
    try:
        client.login(username, ask_secret(f"Password of {username}: "))
    except BaseException:
        client.close()
        raise
    return client


# -- progress ---------------------------------------------------------------------------------


class LineProgress:
    """Plain progress lines, one per phase change and at most one per LINE_INTERVAL."""

    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self._out = out
        self._clock = clock
        self._last = -LINE_INTERVAL
        self._phase = ""

    def __call__(self, progress: UploadProgress) -> None:
        now = self._clock()
        if progress.phase == self._phase and now - self._last < LINE_INTERVAL:
            return
        self._phase = progress.phase
        self._last = now
        words = (
            f"{progress.name}: {progress.phase} {progress.fraction:.0%} "
            f"({size_words(progress.bytes_done)} of {size_words(progress.bytes_total)})"
        )
        if progress.rate:
            words += f" at {size_words(progress.rate)}/s"
        if progress.eta is not None:
            words += f", {progress.eta:.0f} s left"
        print(words, file=self._out, flush=True)

    def close(self) -> None:
        """Nothing to tidy: lines are complete once printed."""


class BarProgress:
    """A tqdm bar per phase of one file."""

    def __init__(self, tqdm: Any, out: TextIO) -> None:
        self._tqdm = tqdm
        self._out = out
        self._bar: Any = None
        self._phase = ""

    def __call__(self, progress: UploadProgress) -> None:
        if self._bar is None or progress.phase != self._phase:
            self.close()
            self._phase = progress.phase
            self._bar = self._tqdm(
                total=progress.bytes_total,
                initial=progress.bytes_done,
                desc=f"{progress.name} ({progress.phase})",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=self._out,
                dynamic_ncols=True,
                leave=False,
            )
        self._bar.update(progress.bytes_done - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_progress(out: TextIO) -> Callable[[], LineProgress | BarProgress]:
    """A factory of per-file progress displays: tqdm bars on a terminal, else lines."""
    if out.isatty():
        try:
            from tqdm import tqdm
        except ImportError:
            pass
        else:
            return lambda: BarProgress(tqdm, out)
    return lambda: LineProgress(out)


# -- the command ------------------------------------------------------------------------------


def main(
    argv: list[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    ask_secret: Callable[[str], str] = getpass.getpass,
) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.name and len(args.paths) > 1:
        parser.error("--name names one file; leave it out to name each model after its file")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    roles = [r.strip() for r in args.roles.split(",") if r.strip()] if args.roles else None
    try:
        client = connect(args, os.environ if environ is None else environ, ask_secret)
    except (UsageError, errors.ApiError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    state_dir = args.state_dir or (args.settings or default_settings_path()).parent / "uploads"
    progress_for = make_progress(sys.stderr)
    failed = 0
    uploader = Uploader(client, state_dir, workers=args.workers, hash_first=args.hash_first)
    with client, uploader as up:
        for path in args.paths:
            progress = progress_for()
            try:
                result = up.upload(
                    path, args.type, name=args.name, allowed_roles=roles, on_progress=progress
                )
            except KeyboardInterrupt:
                progress.close()
                state = up.resume_state(path)
                stored = f"{len(state.parts)} of {state.part_count} parts of " if state else ""
                print(
                    f"\nInterrupted: {stored}{path.name} are in the cloud; run the same command "
                    "again to resume.",
                    file=sys.stderr,
                )
                return EXIT_INTERRUPTED
            except (UploadFailed, errors.ApiError, OSError) as exc:
                progress.close()
                failed += 1
                print(f"Failed {path}: {exc}", file=sys.stderr)
                continue
            progress.close()
            label = "Skipped" if result.outcome == SKIPPED else "Done"
            print(f"{label}: {result.message}", flush=True)
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
