"""Install what the extension's WebUI side needs and the WebUI lacks; A1111 runs this at start.

AUTOMATIC1111 runs every extension's install.py with its own Python at each start-up, so this
must be quick when all is in place (no pip call at all), must never break the WebUI (any
failure is printed, never raised), and must not touch what the WebUI ships and pins itself
(gradio, Pillow, fastapi...): upgrading those from here would break the WebUI.

Standalone on purpose: it runs before the extension can be imported, with the standard
library only (`packaging` is used when present, as it is in A1111).
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence

#: The client's requirements beyond what the WebUI ships; keep in step with pyproject.toml.
REQUIREMENTS: tuple[str, ...] = ("requests>=2.28",)

PREFIX = "[sd-webui-sagemaker]"
#: Seconds one pip call may take; a WebUI start must not hang on a dead network forever.
PIP_TIMEOUT = 600

_SPEC_RE = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:>=\s*([0-9][0-9A-Za-z.+!-]*))?\s*$")


def installed_version(name: str) -> str | None:
    """Version of an installed distribution, None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _version_key(version: str) -> tuple[int, ...]:
    """Fallback ordering without `packaging`: the leading numbers of each dotted part."""
    numbers = []
    for part in version.split("+", 1)[0].split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        numbers.append(int(match.group()))
    return tuple(numbers)


def is_satisfied(spec: str, version: str) -> bool:
    """Whether an installed `version` meets `spec` (a name with an optional `>=` bound)."""
    try:
        from packaging.requirements import Requirement
        from packaging.version import InvalidVersion
    except ImportError:
        match = _SPEC_RE.match(spec)
        if match is None:
            raise ValueError(f"unsupported requirement {spec!r}") from None
        minimum = match.group(2)
        return minimum is None or _version_key(version) >= _version_key(minimum)
    try:
        return Requirement(spec).specifier.contains(version, prereleases=True)
    except InvalidVersion:
        return False


def requirement_name(spec: str) -> str:
    try:
        from packaging.requirements import Requirement
    except ImportError:
        match = _SPEC_RE.match(spec)
        if match is None:
            raise ValueError(f"unsupported requirement {spec!r}") from None
        return match.group(1)
    return Requirement(spec).name


def missing(
    requirements: Sequence[str], version_of: Callable[[str], str | None] = installed_version
) -> list[str]:
    """The requirements not installed, or installed in a version too old."""
    todo = []
    for spec in requirements:
        version = version_of(requirement_name(spec))
        if version is None or not is_satisfied(spec, version):
            todo.append(spec)
    return todo


def install(
    requirements: Sequence[str],
    *,
    version_of: Callable[[str], str | None] = installed_version,
    run: Callable[..., object] = subprocess.run,
    skip: Callable[[], bool] = lambda: False,
    echo: Callable[[str], None] = print,
) -> list[str]:
    """Install what `requirements` lacks, one pip call each; returns the specs installed.

    Silent when everything is in place, since the WebUI prints this at every start. `skip` is
    asked only when something is missing, as answering it may import A1111's `launch`.
    Never raises: a failure is printed with what to run by hand, because an exception here
    would be reported by the WebUI as a broken extension for a dependency it may not need yet.
    """
    try:
        todo = missing(requirements, version_of)
    except Exception as exc:
        echo(f"{PREFIX} could not check requirements: {exc}")
        return []
    if not todo:
        return []
    if skip():
        echo(f"{PREFIX} --skip-install: not installing {', '.join(todo)}")
        return []
    done = []
    for spec in todo:
        echo(f"{PREFIX} installing {spec}")
        argv = [sys.executable, "-m", "pip", "install", spec]
        try:
            run(argv, check=True, timeout=PIP_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as exc:
            echo(
                f"{PREFIX} could not install {spec} ({exc}); the Amazon SageMaker tab may not "
                f"work. Install it by hand: {shlex.join(argv)}"
            )
            continue
        done.append(spec)
    return done


def skip_requested(
    argv: Sequence[str] | None = None, environ: dict[str, str] | None = None
) -> bool:
    """Whether the WebUI was started with --skip-install.

    A1111 runs this file in a subprocess, so its command line reaches us through its `launch`
    module (which parses COMMANDLINE_ARGS) or, without it, through COMMANDLINE_ARGS itself.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    env = os.environ if environ is None else environ
    with contextlib.suppress(ValueError):  # unbalanced quotes: A1111 fails on them itself
        args += shlex.split(env.get("COMMANDLINE_ARGS", ""))
    if "--skip-install" in args:
        return True
    try:
        import launch  # type: ignore[import-not-found]  # A1111's, present only in the WebUI
    except Exception:
        return False
    return bool(getattr(getattr(launch, "args", None), "skip_install", False))


def main() -> int:
    try:
        install(REQUIREMENTS, skip=skip_requested)
    except Exception as exc:  # install() does not raise; this guards the guard
        print(f"{PREFIX} install step failed: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
