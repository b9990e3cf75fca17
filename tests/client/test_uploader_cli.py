"""`python -m aws_extension upload`: signing in, output, exit status, resuming, memory.

Against the real middleware (the local stack of conftest.py), in this process through
`upload_cli.main` or as a process of its own. Where a test counts part PUTs or slows them
down, the command reaches the stack through a real forward proxy on 127.0.0.1
(tests/support/part_proxy.py), set the way a user sets one: `HTTP_PROXY`.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aws_extension import upload_cli
from aws_extension.client.api import ApiClient, ClientOptions
from aws_extension.client.settings_store import SettingsStore
from aws_extension.client.transfer import UploadProgress
from aws_extension.client.upload_state import UploadStates
from tests.support.part_proxy import PartProxy, running_proxy

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
#: The stack's part size (CheckpointPolicy.part_size).
PART = 8 * MIB
_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture(autouse=True)
def no_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command honours the proxy variables, as requests does: start without any."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
def proxy() -> Iterator[PartProxy]:
    with running_proxy() as running:
        yield running


@pytest.fixture
def proxied_here(proxy: PartProxy) -> Iterator[PartProxy]:
    """The proxy, set for this process (`HTTP_PROXY`), so the command run here goes through
    it (the fixtures' own clients too, meanwhile). Unset before the proxy stops."""
    with pytest.MonkeyPatch.context() as patched:
        patched.setenv("HTTP_PROXY", proxy.url)
        yield proxy


class Prompts(list):
    """Stands in for getpass: answers the questions, records what was asked."""

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__()
        self.answers = answers

    def __call__(self, prompt: str) -> str:
        self.append(prompt)
        return self.answers[prompt]


def password_prompt(server: Any) -> Prompts:
    return Prompts({f"Password of {server.username}: ": server.password})


def files(tmp_path: Path, *sizes: int) -> list[Path]:
    paths = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"model{index}.safetensors"
        path.write_bytes(random.Random(index * 1_000_003 + size).randbytes(size))
        paths.append(path)
    return paths


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def run(args: list[str], prompts: Prompts | None = None, **environ: str) -> int:
    asked = prompts if prompts is not None else Prompts({})
    return upload_cli.main(args, environ=environ, ask_secret=asked)


def login_args(server: Any, tmp_path: Path) -> list[str]:
    return [
        "--api-url",
        server.url,
        "--username",
        server.username,
        "--state-dir",
        str(tmp_path / "states"),
    ]


def models(server: Any, name: str) -> list[dict]:
    """The models of that exact name, as the server lists them."""
    return [m for m in server.admin.list_checkpoints(name=name).items if m["name"] == name]


def signed_in_settings(server: Any, tmp_path: Path) -> tuple[Path, str]:
    """The settings file the tab writes once the test's user signed in, and its token."""
    settings = tmp_path / "webui" / "sagemaker" / "settings.json"
    store = SettingsStore(settings)
    store.save_connection(server.url, server.api_token)
    with ApiClient(server.url, server.api_token, options=ClientOptions(timeout=10)) as api:
        api.login(server.username, server.password)
        assert api.refresh_token
        store.save_user_session("", server.username, api.refresh_token)
        return settings, api.refresh_token


def test_uploads_with_an_api_url_a_token_from_the_environment_and_a_password_prompt(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = files(tmp_path, PART + 100, 512)
    roles = [server.add_role("artist", []), server.add_role("painter", [])]
    prompts = password_prompt(server)
    args = [*map(str, paths), "--type", "Lora", "--roles", f"{roles[0]}, {roles[1]}"]
    code = run(
        [*args, *login_args(server, tmp_path)], prompts, SAGEMAKER_API_TOKEN=server.api_token
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert prompts == [f"Password of {server.username}: "]
    [first] = models(server, "model0.safetensors")
    [second] = models(server, "model1.safetensors")
    lines = out.splitlines()
    assert len(lines) == 2
    for line, model, path in zip(lines, (first, second), paths, strict=True):
        assert line.startswith(
            f"Done: Uploaded {path.name} as {model['id']} (sha256 {sha256_of(path)[:10]}, "
        )
    for model, path in ((first, paths[0]), (second, paths[1])):
        assert (model["status"], model["sha256"], model["size"]) == (
            "Active",
            sha256_of(path),
            path.stat().st_size,
        )
        assert model["allowed_roles"] == roles
        assert model["created_by"] == server.username
    # Not a terminal: plain progress lines.
    assert "model0.safetensors: uploading" in err
    assert server.password not in out + err and server.api_token not in out + err


def test_the_api_token_is_asked_for_when_the_environment_has_none(
    server: Any, tmp_path: Path
) -> None:
    [path] = files(tmp_path, 1000)
    prompts = Prompts(
        {"API token: ": server.api_token, f"Password of {server.username}: ": server.password}
    )
    code = run(
        [str(path), "--type", "VAE", "--state-dir", str(tmp_path / "s")],
        prompts,
        SAGEMAKER_API_URL=server.url,
        SAGEMAKER_USERNAME=server.username,
    )
    assert code == 0
    assert prompts == ["API token: ", f"Password of {server.username}: "]
    [model] = models(server, "model0.safetensors")
    assert (model["type"], model["status"]) == ("VAE", "Active")


def test_the_stored_session_of_the_tab_signs_in_without_a_password(
    server: Any, tmp_path: Path
) -> None:
    settings, _ = signed_in_settings(server, tmp_path)
    [path] = files(tmp_path, 1000)
    # No prompt may be asked: an empty Prompts fails on any question.
    code = run([str(path), "--type", "Lora", "--settings", str(settings)])
    assert code == 0
    [model] = models(server, "model0.safetensors")
    assert (model["status"], model["created_by"]) == ("Active", server.username)
    # The session is still stored, and resume states live beside the settings.
    session = SettingsStore(settings).user_session("")
    assert session is not None and session.username == server.username
    assert (settings.parent / "uploads").is_dir()


def test_an_expired_stored_session_says_how_to_sign_in(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings, refresh_token = signed_in_settings(server, tmp_path)
    server.sign_out_elsewhere(server.login)  # revokes every token of the user
    [path] = files(tmp_path, 1000)
    assert run([str(path), "--type", "Lora", "--settings", str(settings)]) == 2
    err = capsys.readouterr().err
    assert f"The session of {server.username} stored in" in err and "has expired" in err
    assert refresh_token not in err
    assert models(server, "model0.safetensors") == []


def test_settings_without_a_connection_say_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [path] = files(tmp_path, 1000)
    code = run([str(path), "--type", "Lora", "--settings", str(tmp_path / "none.json")])
    assert code == 2
    assert "No API URL and token in" in capsys.readouterr().err


def test_settings_with_nobody_signed_in_ask_for_a_username(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    SettingsStore(settings).save_connection(server.url, server.api_token)
    [path] = files(tmp_path, 1000)
    assert run([str(path), "--type", "Lora", "--settings", str(settings)]) == 2
    assert "sign in in the tab first, or pass --username" in capsys.readouterr().err
    prompts = password_prompt(server)
    args = [str(path), "--type", "Lora", "--settings", str(settings)]
    assert run([*args, "--username", server.username], prompts) == 0
    assert prompts == [f"Password of {server.username}: "]


def test_a_wrong_password_is_a_sign_in_error(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [path] = files(tmp_path, 1000)
    prompts = Prompts({f"Password of {server.username}: ": "not it"})
    code = run(
        [str(path), "--type", "Lora", "--api-url", server.url, "--username", server.username],
        prompts,
        SAGEMAKER_API_TOKEN=server.api_token,
    )
    assert code == 2
    assert "Wrong username or password." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["a.bin", "b.bin", "--type", "Lora", "--name", "x"], "--name names one file"),
        (["a.bin", "--type", "Checkpoint"], "invalid choice"),
        (["a.bin", "--type", "Lora", "--workers", "0"], "--workers must be at least 1"),
        (["a.bin"], "--type"),
    ],
)
def test_usage_errors(args: list[str], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run(args)
    assert exited.value.code == 2
    assert words in capsys.readouterr().err


def test_one_failed_file_fails_the_run_but_not_the_others(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = files(tmp_path, 1000, 2000)
    missing = tmp_path / "missing.bin"
    code = run(
        [str(missing), str(first), str(second), "--type", "Lora", *login_args(server, tmp_path)],
        password_prompt(server),
        SAGEMAKER_API_TOKEN=server.api_token,
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert f"Failed {missing}: Cannot read" in err
    assert out.count("Done: Uploaded") == 2
    assert [m["status"] for m in server.admin.list_checkpoints().items] == ["Active", "Active"]


def test_content_already_there_is_reported_as_skipped(
    server: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [path] = files(tmp_path, PART + 100)
    common = ["--type", "Lora", *login_args(server, tmp_path)]
    token = {"SAGEMAKER_API_TOKEN": server.api_token}
    assert run([str(path), *common], password_prompt(server), **token) == 0
    [model] = models(server, "model0.safetensors")
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(path.read_bytes())
    capsys.readouterr()
    assert run([str(copy), "--hash-first", *common], password_prompt(server), **token) == 0
    assert capsys.readouterr().out == (
        f"Skipped: copy.safetensors is already in the cloud as {model['id']}.\n"
    )
    assert models(server, "copy.safetensors") == []


def test_ctrl_c_keeps_the_state_and_says_how_to_resume(
    server: Any,
    proxied_here: PartProxy,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [path] = files(tmp_path, 4 * PART)
    proxy = proxied_here
    proxy.delay = 0.2

    def interrupt(self: object, progress: UploadProgress) -> None:
        if progress.parts_done >= 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(upload_cli.LineProgress, "__call__", interrupt)
        args = [str(path), "--type", "Lora", "--workers", "1", *login_args(server, tmp_path)]
        code = run(args, password_prompt(server), SAGEMAKER_API_TOKEN=server.api_token)
    assert code == 130
    err = capsys.readouterr().err
    assert "Interrupted: " in err and " of 4 parts of model0.safetensors are in the cloud" in err
    assert "run the same command again to resume" in err
    [model] = models(server, "model0.safetensors")
    assert model["status"] == "Uploading"

    proxy.delay = 0.0
    before = proxy.puts.copy()
    assert run(args, password_prompt(server), SAGEMAKER_API_TOKEN=server.api_token) == 0
    assert "parts from an earlier try" in capsys.readouterr().out
    assert 0 < sum((proxy.puts - before).values()) < 4
    assert server.admin.get_checkpoint(model["id"])["status"] == "Active"


# -- the command as a process of its own -----------------------------------------------------


def command_env(proxy: PartProxy | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key.lower() not in _PROXY_VARIABLES}
    env.update({"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    if proxy is not None:
        env["HTTP_PROXY"] = proxy.url
    return env


def test_the_command_resumes_after_being_killed_and_sends_only_the_missing_parts(
    server: Any, proxy: PartProxy, tmp_path: Path
) -> None:
    """Killed outright half way (no Ctrl-C to handle): the state saved per part is enough."""
    [path] = files(tmp_path, 5 * PART + 1)
    settings, _ = signed_in_settings(server, tmp_path)
    command = [sys.executable, "-m", "aws_extension", "upload", str(path), "--type", "Lora"]
    command += ["--settings", str(settings), "--workers", "2"]
    proxy.delay = 0.2
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        env=command_env(proxy),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while proxy.sent_parts() < 3:
            assert child.poll() is None, child.communicate()[0]
            assert time.monotonic() < deadline, "the upload did not get going"
            time.sleep(0.02)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    proxy.wait_closed()  # what the killed command had sent is counted now

    state = UploadStates(settings.parent / "uploads").load(server.url, path)
    assert state is not None, "the killed upload left no resume state"
    missing = state.missing()
    assert 0 < len(missing) < 6
    before = proxy.puts.copy()
    proxy.delay = 0.0
    done = subprocess.run(
        command, cwd=ROOT, env=command_env(proxy), capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted((proxy.puts - before).elements()) == missing
    assert f"{6 - len(missing)} of 6 parts from an earlier try" in done.stdout
    [model] = models(server, "model0.safetensors")
    assert (model["status"], model["size"], model["sha256"]) == (
        "Active",
        path.stat().st_size,
        sha256_of(path),
    )
    assert not list((settings.parent / "uploads").glob("*.json"))


_MEASURED = """
import sys
from aws_extension.upload_cli import main
code = main(sys.argv[1:])
with open("/proc/self/status") as status:
    print(next(line for line in status if line.startswith("VmHWM:")), end="", file=sys.stderr)
sys.exit(code)
"""


def test_the_command_uploads_256_mib_with_bounded_memory(server: Any, tmp_path: Path) -> None:
    """4 workers and 8 MiB parts: about 5 parts in memory, never the file."""
    path = tmp_path / "sparse.safetensors"
    size = 256 * MIB
    with path.open("wb") as handle:  # sparse: costs no disk, reads as zeros
        handle.truncate(size)
    settings, _ = signed_in_settings(server, tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(path), "--type", "Lora", "--settings", str(settings)],
        cwd=ROOT,
        env=command_env(None),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # VmHWM of the process image itself: ru_maxrss would carry over the forking pytest's peak.
    peak_kib = int(done.stderr.rsplit("VmHWM:", 1)[1].split()[0])
    print(f"peak RSS of the upload command: {peak_kib / 1024:.0f} MiB")
    assert peak_kib * 1024 < 150 * 10**6, f"peak RSS {peak_kib / 1024:.0f} MiB"
    [model] = models(server, "sparse.safetensors")
    zeros = hashlib.sha256()
    for _ in range(size // MIB):
        zeros.update(bytes(MIB))
    assert (model["status"], model["size"], model["sha256"]) == ("Active", size, zeros.hexdigest())


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_tqdm_bar_per_phase() -> None:
    pytest.importorskip("tqdm")
    out = Terminal()
    display = upload_cli.make_progress(out)()
    assert isinstance(display, upload_cli.BarProgress)
    for done in (0, 512, 1024):
        display(UploadProgress("p", "m.bin", "uploading", done, 1024, done // 512, 2, None, None))
    display(UploadProgress("p", "m.bin", "completing", 1024, 1024, 2, 2, None, None))
    display.close()
    text = out.getvalue()
    assert "m.bin (uploading)" in text and "m.bin (completing)" in text
    assert "1.00k/1.00k" in text


def test_plain_lines_are_spaced_out_but_show_every_phase_change() -> None:
    now = [0.0]
    out = io.StringIO()
    lines = upload_cli.LineProgress(out, clock=lambda: now[0])
    for second in range(12):
        now[0] = float(second)
        done = second * 100 * 1024 * 1024
        lines(UploadProgress("p", "m", "uploading", done, 2**31, 0, 1, 100 * 2**20, 9.5))
    lines(UploadProgress("p", "m", "completing", 2**31, 2**31, 1, 1, None, None))
    assert out.getvalue().splitlines() == [
        "m: uploading 0% (0 B of 2.0 GiB) at 100.0 MiB/s, 10 s left",
        "m: uploading 24% (500.0 MiB of 2.0 GiB) at 100.0 MiB/s, 10 s left",
        "m: uploading 49% (1000.0 MiB of 2.0 GiB) at 100.0 MiB/s, 10 s left",
        "m: completing 100% (2.0 GiB of 2.0 GiB)",
    ]


def test_the_command_is_cheap_to_import_and_listed() -> None:
    code = (
        "import sys, aws_extension.upload_cli; "
        "print(sorted({'gradio', 'tqdm', 'fastapi', 'boto3'} & set(sys.modules)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert result.stdout.strip() == "[]"
    listing = subprocess.run(
        [sys.executable, "-m", "aws_extension"], capture_output=True, text=True, cwd=ROOT
    )
    assert "upload" in listing.stdout
