"""Test sessions for the two Python worlds of the project.

`server` runs the middleware/local stack tests on current FastAPI + pydantic 2; `client`
runs the extension's tests on the pins of AUTOMATIC1111 v1.10.1 and the browser tests, which
start the local stack from a separate server-side virtualenv (`.nox/stack`); `endpoint` runs
the endpoint runtime's tests on torch + diffusers; `lint` runs ruff.
`demo` starts the local stack and the standalone tab for a person to try.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
nox.options.sessions = ["lint", "server", "client", "endpoint"]
nox.options.reuse_existing_virtualenvs = True

CLIENT_REQUIREMENTS = ("-r", "requirements/a1111.txt", "-r", "requirements/test-client.txt")
#: The local stack runs the endpoint runtime's engines (torch pinned there), so the server side
#: installs them in the same pip command as the middleware.
ENGINE_REQUIREMENTS = ("-r", str(ROOT / "requirements" / "endpoint.txt"))


def _side_venv(name: str, *pip_installs: tuple[str, ...]) -> Path:
    """A virtualenv outside nox's own, re-installed when its inputs change.

    Nox cannot hand one session's venv to another, yet the client session needs the server
    side to start the local stack as a real process, and the demo needs the client side for
    its tab. Each entry of `pip_installs` is the arguments of one `pip install`; the venv is
    rebuilt when they or pyproject.toml / the requirements files change.
    """
    venv = ROOT / ".nox" / name
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    inputs = [ROOT / "pyproject.toml", *sorted((ROOT / "requirements").glob("*.txt"))]
    wanted = hashlib.sha256(
        b"".join(path.read_bytes() for path in inputs) + repr(pip_installs).encode()
    ).hexdigest()
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if not stamp.exists() or stamp.read_text() != wanted:
        for arguments in pip_installs:
            subprocess.run([str(python), "-m", "pip", "install", "--quiet", *arguments], check=True)
        stamp.write_text(wanted)
    return python


def _ensure_chromium(session: nox.Session) -> None:
    """Debian's chromium drives the browser tests; install it when missing and we may."""
    if Path("/usr/bin/chromium").exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        session.error("The browser tests need Debian's chromium: apt-get install chromium")
    session.run("apt-get", "update", "-qq", external=True)
    session.run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        "chromium",
        external=True,
        env={"DEBIAN_FRONTEND": "noninteractive"},
    )


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def server(session: nox.Session) -> None:
    session.install(*ENGINE_REQUIREMENTS, "-e", ".[server,test-server]")
    session.run("pytest", "tests/server", *session.posargs)


@nox.session
def client(session: nox.Session) -> None:
    session.install(*CLIENT_REQUIREMENTS)
    session.install("--no-deps", "-e", ".")
    _ensure_chromium(session)
    stack_python = _side_venv("stack", (*ENGINE_REQUIREMENTS, "-e", f"{ROOT}[server]"))
    session.run(
        "pytest",
        "tests/client",
        "tests/browser",
        *session.posargs,
        env={"SAGEMAKER_STACK_PYTHON": str(stack_python)},
    )


@nox.session
def endpoint(session: nox.Session) -> None:
    """The endpoint runtime on torch (CPU here) + diffusers, with the tiny demo model."""
    session.install("-r", "requirements/endpoint.txt", "pytest")
    session.install("--no-deps", "-e", ".")
    session.run("pytest", "tests/endpoint", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The local stack plus the standalone tab: open the printed URL and sign in."""
    session.install(*ENGINE_REQUIREMENTS, "-e", ".[server]")
    ui_python = _side_venv(
        "ui", ("-r", str(ROOT / "requirements" / "a1111.txt")), ("--no-deps", "-e", str(ROOT))
    )
    session.run(
        "python", "-m", "aws_extension", "demo", "--ui-python", str(ui_python), *session.posargs
    )
