"""install.py: installs exactly what is missing or too old, nothing else, and never raises.

Unit tests inject the version lookup and the runner; two tests run `python install.py` for
real in a subprocess, with a fake `pip` module first on PYTHONPATH that records its argv,
so no package index is ever contacted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import install

ROOT = Path(__file__).resolve().parents[2]


class Runner:
    """Stands in for subprocess.run: records argv, optionally fails."""

    def __init__(self, fail: BaseException | None = None):
        self.calls: list[list[str]] = []
        self.kwargs: list[dict] = []
        self.fail = fail

    def __call__(self, argv: list[str], **kwargs: object) -> None:
        self.calls.append(argv)
        self.kwargs.append(kwargs)
        if self.fail is not None:
            raise self.fail


def versions(table: dict[str, str]) -> Callable[[str], str | None]:
    return table.get


def test_missing_package_is_installed_exactly() -> None:
    run, out = Runner(), []
    done = install.install(
        ["requests>=2.28", "tqdm>=4"],
        version_of=versions({"tqdm": "4.66.1"}),
        run=run,
        echo=out.append,
    )
    assert done == ["requests>=2.28"]
    assert run.calls == [[sys.executable, "-m", "pip", "install", "requests>=2.28"]]
    # List argv, no shell, a bound on the time it may take.
    assert run.kwargs[0]["check"] is True
    assert run.kwargs[0]["timeout"] == install.PIP_TIMEOUT
    assert "shell" not in run.kwargs[0]
    assert out == ["[sd-webui-sagemaker] installing requests>=2.28"]


@pytest.mark.parametrize("old", ["2.27.1", "1.0", "2.9.0"])
def test_too_old_package_is_installed(old: str) -> None:
    run = Runner()
    install.install(["requests>=2.28"], version_of=versions({"requests": old}), run=run, echo=print)
    assert run.calls == [[sys.executable, "-m", "pip", "install", "requests>=2.28"]]


@pytest.mark.parametrize("current", ["2.28", "2.28.0", "2.32.3", "3.0.0rc1", "10.0"])
def test_satisfied_package_installs_nothing_and_says_nothing(current: str) -> None:
    run, out = Runner(), []
    done = install.install(
        ["requests>=2.28"], version_of=versions({"requests": current}), run=run, echo=out.append
    )
    assert done == []
    assert run.calls == []
    assert out == []  # A1111 prints our output at every start: stay quiet when all is well


def test_second_run_after_install_installs_nothing() -> None:
    installed: dict[str, str] = {}

    def pip(argv: list[str], **kwargs: object) -> None:
        installed["requests"] = "2.32.3"

    first, second = [], []
    install.install(["requests>=2.28"], version_of=installed.get, run=pip, echo=first.append)
    run = Runner()
    install.install(["requests>=2.28"], version_of=installed.get, run=run, echo=second.append)
    assert first and not second
    assert run.calls == []


def test_skip_install_installs_nothing_but_says_what_is_missing() -> None:
    run, out = Runner(), []
    done = install.install(
        ["requests>=2.28"], version_of=versions({}), run=run, skip=lambda: True, echo=out.append
    )
    assert done == []
    assert run.calls == []
    assert out == ["[sd-webui-sagemaker] --skip-install: not installing requests>=2.28"]


def test_skip_is_not_asked_when_nothing_is_missing() -> None:
    def skip() -> bool:
        raise AssertionError("asked although nothing is missing")

    install.install(
        ["requests>=2.28"], version_of=versions({"requests": "2.31"}), run=Runner(), skip=skip
    )


@pytest.mark.parametrize(
    "failure",
    [
        subprocess.CalledProcessError(1, ["pip"]),
        subprocess.TimeoutExpired(["pip"], 600),
        FileNotFoundError(2, "No such file"),
    ],
)
def test_a_failing_pip_is_reported_not_raised(failure: BaseException) -> None:
    run, out = Runner(fail=failure), []
    done = install.install(
        ["requests>=2.28", "tqdm>=4"], version_of=versions({}), run=run, echo=out.append
    )
    assert done == []
    assert len(run.calls) == 2  # one failure does not stop the next requirement
    assert "could not install requests>=2.28" in out[1]
    assert "pip install 'requests>=2.28'" in out[1]  # a command the user can paste


def test_a_broken_requirement_is_reported_not_raised() -> None:
    out: list[str] = []
    assert install.install(["not a requirement!"], version_of=versions({}), echo=out.append) == []
    assert out[0].startswith("[sd-webui-sagemaker] could not check requirements")


@pytest.mark.parametrize(
    ("spec", "version", "ok"),
    [
        ("requests>=2.28", "2.28.0", True),
        ("requests>=2.28", "2.27.99", False),
        ("requests>=2.28", "2.100", True),
        ("requests", "0.1", True),
    ],
)
def test_version_comparison_without_packaging(
    monkeypatch: pytest.MonkeyPatch, spec: str, version: str, ok: bool
) -> None:
    monkeypatch.setitem(sys.modules, "packaging", None)
    monkeypatch.setitem(sys.modules, "packaging.requirements", None)
    monkeypatch.setitem(sys.modules, "packaging.version", None)
    assert install.requirement_name(spec) == "requests"
    assert install.is_satisfied(spec, version) is ok


def test_installed_version_reads_metadata() -> None:
    import requests

    assert install.installed_version("requests") == requests.__version__
    assert install.installed_version("no-such-distribution-xyz") is None


def test_requirements_stay_small() -> None:
    # The WebUI ships and pins these; installing them from here would break it.
    names = {install.requirement_name(spec).lower() for spec in install.REQUIREMENTS}
    assert names == {"requests"}


@pytest.mark.parametrize(
    ("argv", "commandline_args", "skip"),
    [
        (["--skip-install"], "", True),
        ([], "--xformers --skip-install", True),
        ([], "--xformers", False),
        ([], "--unbalanced 'quote", False),
    ],
)
def test_skip_requested(argv: list[str], commandline_args: str, skip: bool) -> None:
    assert install.skip_requested(argv, {"COMMANDLINE_ARGS": commandline_args}) is skip


def test_skip_requested_reads_a1111_launch_args(monkeypatch: pytest.MonkeyPatch) -> None:
    class Args:
        skip_install = True

    class Launch:
        args = Args()

    monkeypatch.setitem(sys.modules, "launch", Launch)
    assert install.skip_requested([], {}) is True
    Args.skip_install = False
    assert install.skip_requested([], {}) is False


# -- the real script ----------------------------------------------------------------------


@pytest.fixture
def fake_pip(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A `pip` package that shadows the real one and logs its argv to a file."""
    shadow = tmp_path / "shadow"
    (shadow / "pip").mkdir(parents=True)
    (shadow / "pip" / "__init__.py").write_text("")
    log = tmp_path / "pip-calls.jsonl"
    (shadow / "pip" / "__main__.py").write_text(
        "import json, os, sys\n"
        "with open(os.environ['FAKE_PIP_LOG'], 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COMMANDLINE_ARGS")}
    env["PYTHONPATH"] = str(shadow)
    env["FAKE_PIP_LOG"] = str(log)
    return env, log


def run_script(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "install.py"), *args],
        env=env,
        cwd=ROOT.parent,  # not the repo: A1111 runs it from its own folder
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_script_in_a_satisfied_environment_calls_no_pip(
    fake_pip: tuple[dict[str, str], Path],
) -> None:
    env, log = fake_pip
    result = run_script(env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert not log.exists()


def test_script_installs_a_too_old_package_through_pip(
    fake_pip: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, log = fake_pip
    # Metadata of an old requests, found before the real one on sys.path.
    old = Path(env["PYTHONPATH"]) / "requests-2.0.0.dist-info"
    old.mkdir()
    (old / "METADATA").write_text("Metadata-Version: 2.1\nName: requests\nVersion: 2.0.0\n")
    result = run_script(env)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in log.read_text().splitlines()] == [
        ["install", "requests>=2.28"]
    ]
    assert "installing requests>=2.28" in result.stdout
    # --skip-install, as A1111 passes it through COMMANDLINE_ARGS: nothing more is run.
    log.unlink()
    result = run_script({**env, "COMMANDLINE_ARGS": "--skip-install"})
    assert result.returncode == 0, result.stderr
    assert not log.exists()
    assert "--skip-install: not installing requests>=2.28" in result.stdout
