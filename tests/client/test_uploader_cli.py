"""`python -m aws_extension upload`: signing in, output, exit status, against the faked API."""

from __future__ import annotations

import hashlib
import io
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import responses
from fake_checkpoints import API, API_TOKEN, PASSWORD, REFRESH, FakeCheckpoints

from aws_extension import upload_cli
from aws_extension.client.settings_store import SettingsStore
from aws_extension.client.transfer import UploadProgress

ROOT = Path(__file__).resolve().parents[2]
PART = 1024


@pytest.fixture
def fake() -> Iterator[FakeCheckpoints]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeCheckpoints(mock, part_size=PART)


class Prompts(list):
    """Stands in for getpass: answers the password, records what was asked."""

    def __init__(self, answers: dict[str, str]) -> None:
        super().__init__()
        self.answers = answers

    def __call__(self, prompt: str) -> str:
        self.append(prompt)
        return self.answers[prompt]


def files(tmp_path: Path, *sizes: int) -> list[Path]:
    paths = []
    for index, size in enumerate(sizes):
        path = tmp_path / f"model{index}.safetensors"
        path.write_bytes(random.Random(index).randbytes(size))
        paths.append(path)
    return paths


def run(args: list[str], prompts: Prompts | None = None, **environ: str) -> int:
    asked = prompts if prompts is not None else Prompts({})
    return upload_cli.main(args, environ=environ, ask_secret=asked)


def login_args(tmp_path: Path) -> list[str]:
    return ["--api-url", API, "--username", "admin", "--state-dir", str(tmp_path / "states")]


def test_uploads_with_an_api_url_a_token_from_the_environment_and_a_password_prompt(
    fake: FakeCheckpoints, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    paths = files(tmp_path, 3 * PART, PART // 2)
    prompts = Prompts({"Password of admin: ": PASSWORD})
    code = run(
        [*map(str, paths), "--type", "Lora", "--roles", "artist, painter", *login_args(tmp_path)],
        prompts,
        SAGEMAKER_API_TOKEN=API_TOKEN,
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert prompts == ["Password of admin: "]
    lines = out.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("Done: Uploaded model0.safetensors as ck1 (sha256 ")
    assert lines[1].startswith("Done: Uploaded model1.safetensors as ck2 (sha256 ")
    assert [b["allowed_roles"] for b in fake.bodies("POST", "/checkpoints")] == [
        ["artist", "painter"],
        ["artist", "painter"],
    ]
    # Not a terminal: plain progress lines.
    assert "model0.safetensors: uploading" in err
    assert PASSWORD not in out + err and API_TOKEN not in out + err


def test_the_api_token_is_asked_for_when_the_environment_has_none(
    fake: FakeCheckpoints, tmp_path: Path
) -> None:
    [path] = files(tmp_path, PART)
    prompts = Prompts({"API token: ": API_TOKEN, "Password of admin: ": PASSWORD})
    code = run(
        [str(path), "--type", "VAE", "--state-dir", str(tmp_path / "s")],
        prompts,
        SAGEMAKER_API_URL=API,
        SAGEMAKER_USERNAME="admin",
    )
    assert code == 0
    assert prompts == ["API token: ", "Password of admin: "]


def test_the_stored_session_of_the_tab_signs_in_without_a_password(
    fake: FakeCheckpoints, tmp_path: Path
) -> None:
    settings = tmp_path / "webui" / "sagemaker" / "settings.json"
    store = SettingsStore(settings)
    store.save_connection(API, API_TOKEN)
    store.save_user_session("", "admin", REFRESH)
    [path] = files(tmp_path, 2 * PART)
    code = run([str(path), "--type", "Lora", "--settings", str(settings)])
    assert code == 0
    assert fake.paths("POST")[0] == "/auth/refresh"
    assert "/auth/login" not in fake.paths("POST")
    # Resume states live beside the settings unless told otherwise.
    assert (settings.parent / "uploads").is_dir()


def test_an_expired_stored_session_says_how_to_sign_in(
    fake: FakeCheckpoints, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    store = SettingsStore(settings)
    store.save_connection(API, API_TOKEN)
    store.save_user_session("", "admin", "revoked-refresh-token")
    [path] = files(tmp_path, PART)
    assert run([str(path), "--type", "Lora", "--settings", str(settings)]) == 2
    err = capsys.readouterr().err
    assert "The session of admin stored in" in err and "has expired" in err
    assert "revoked-refresh-token" not in err


def test_settings_without_a_connection_say_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [path] = files(tmp_path, PART)
    code = run([str(path), "--type", "Lora", "--settings", str(tmp_path / "none.json")])
    assert code == 2
    assert "No API URL and token in" in capsys.readouterr().err


def test_settings_with_nobody_signed_in_ask_for_a_username(
    fake: FakeCheckpoints, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "settings.json"
    SettingsStore(settings).save_connection(API, API_TOKEN)
    [path] = files(tmp_path, PART)
    assert run([str(path), "--type", "Lora", "--settings", str(settings)]) == 2
    assert "sign in in the tab first, or pass --username" in capsys.readouterr().err
    prompts = Prompts({"Password of admin: ": PASSWORD})
    code = run(
        [str(path), "--type", "Lora", "--settings", str(settings), "--username", "admin"], prompts
    )
    assert code == 0 and prompts == ["Password of admin: "]


def test_a_wrong_password_is_a_sign_in_error(
    fake: FakeCheckpoints, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [path] = files(tmp_path, PART)
    prompts = Prompts({"Password of admin: ": "not it"})
    code = run(
        [str(path), "--type", "Lora", "--api-url", API, "--username", "admin"],
        prompts,
        SAGEMAKER_API_TOKEN=API_TOKEN,
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
    fake: FakeCheckpoints, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = files(tmp_path, PART, PART)
    code = run(
        [
            str(tmp_path / "missing.bin"),
            str(first),
            str(second),
            "--type",
            "Lora",
            *login_args(tmp_path),
        ],
        Prompts({"Password of admin: ": PASSWORD}),
        SAGEMAKER_API_TOKEN=API_TOKEN,
    )
    out, err = capsys.readouterr()
    assert code == 1
    assert f"Failed {tmp_path / 'missing.bin'}: Cannot read" in err
    assert out.count("Done: Uploaded") == 2


def test_content_already_there_is_reported_as_skipped(
    fake: FakeCheckpoints, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [path] = files(tmp_path, PART)
    fake.contents[("Lora", hashlib.sha256(path.read_bytes()).hexdigest())] = "ck-old"
    code = run(
        [str(path), "--type", "Lora", "--hash-first", *login_args(tmp_path)],
        Prompts({"Password of admin: ": PASSWORD}),
        SAGEMAKER_API_TOKEN=API_TOKEN,
    )
    assert code == 0
    assert capsys.readouterr().out == (
        "Skipped: model0.safetensors is already in the cloud as ck-old.\n"
    )


def test_ctrl_c_keeps_the_state_and_says_how_to_resume(
    fake: FakeCheckpoints,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    [path] = files(tmp_path, 6 * PART)
    fake.put_delay = 0.05

    def interrupt(self: object, progress: UploadProgress) -> None:
        if progress.parts_done >= 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(upload_cli.LineProgress, "__call__", interrupt)
    args = [str(path), "--type", "Lora", "--workers", "1", *login_args(tmp_path)]
    prompts = Prompts({"Password of admin: ": PASSWORD})
    assert run(args, prompts, SAGEMAKER_API_TOKEN=API_TOKEN) == 130
    err = capsys.readouterr().err
    assert "Interrupted: " in err and " of 6 parts of model0.safetensors are in the cloud" in err
    assert "run the same command again to resume" in err

    monkeypatch.undo()
    assert run(args, prompts, SAGEMAKER_API_TOKEN=API_TOKEN) == 0
    assert "parts from an earlier try" in capsys.readouterr().out


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
