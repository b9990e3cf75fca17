"""The uploader and its command line against the real local stack, over real HTTP.

The stack runs as its own process (`python -m aws_extension local`) with the folder blob
backend, so part URLs are the stack's own signed `/blobs/...` routes. Faults and counting
come from a real forward proxy on 127.0.0.1 (part_proxy.py) that the uploader is pointed at
like at any proxy; the uploader itself is the shipped code, unmocked.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from aws_extension.client import errors
from aws_extension.client.api import ApiClient, ClientOptions
from aws_extension.client.settings_store import SettingsStore
from aws_extension.client.transfer import make_session
from aws_extension.client.upload_state import UploadStates
from aws_extension.client.uploader import SKIPPED, UPLOADED, Uploader
from tests.server.part_proxy import EXPIRED, PartProxy, running_proxy
from tests.server.stack import Stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MIB = 1024 * 1024
#: The stack's part size (CheckpointPolicy.part_size).
PART = 8 * MIB
OPTIONS = ClientOptions(timeout=30, connect_timeout=5, retries=2)


@pytest.fixture
def stack(tmp_path: Path, launch: Callable[[Path], Stack]) -> Stack:
    return launch(tmp_path / "state")


@pytest.fixture
def client(stack: Stack) -> Iterator[ApiClient]:
    password = stack.field("Password:")
    assert password
    with ApiClient(stack.url, stack.api_token, options=OPTIONS) as api:
        api.login("admin", password)
        yield api


@pytest.fixture
def proxy() -> Iterator[PartProxy]:
    with running_proxy() as running:
        yield running


def proxied(proxy: PartProxy, workers: int = 4) -> requests.Session:
    session = make_session(workers)
    session.trust_env = False
    session.proxies = {"http": proxy.url}
    return session


def random_file(path: Path, size: int, seed: int = 1) -> Path:
    rng = random.Random(seed)
    with path.open("wb") as handle:
        left = size
        while left:
            block = rng.randbytes(min(MIB, left))
            handle.write(block)
            left -= len(block)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(MIB):
            digest.update(chunk)
    return digest.hexdigest()


def stored_object(stack_dir: Path, checkpoint: dict) -> Path:
    return stack_dir / "blobs" / "objects" / "checkpoints" / checkpoint["id"] / checkpoint["name"]


def test_a_full_upload_is_active_with_the_right_size_and_sha256(
    client: ApiClient, tmp_path: Path
) -> None:
    path = random_file(tmp_path / "model.safetensors", 2 * PART + 12345)
    with Uploader(client, tmp_path / "states") as up:
        result = up.upload(path, "Stable-diffusion", allowed_roles=["admin"])
    assert result.outcome == UPLOADED
    checkpoint = client.get_checkpoint(result.checkpoint_id)
    assert checkpoint["status"] == "Active"
    assert checkpoint["size"] == path.stat().st_size
    assert checkpoint["sha256"] == result.sha256 == sha256_of(path)
    assert checkpoint["allowed_roles"] == ["admin"]
    assert sha256_of(stored_object(tmp_path / "state", checkpoint)) == sha256_of(path)
    assert not up.state_file(path).exists()

    # The same content again, under another name: skipped without sending.
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(path.read_bytes())
    with Uploader(client, tmp_path / "states", hash_first=True) as up:
        again = up.upload(copy, "Stable-diffusion")
    assert again.outcome == SKIPPED and again.checkpoint_id == result.checkpoint_id
    assert again.message == f"copy.safetensors is already in the cloud as {result.checkpoint_id}."
    # The same name again: refused in words.
    with Uploader(client, tmp_path / "states") as up, pytest.raises(errors.Conflict):
        up.upload(copy, "Stable-diffusion", name="model.safetensors")


def test_a_part_that_fails_twice_then_succeeds_completes_the_upload(
    client: ApiClient, proxy: PartProxy, tmp_path: Path
) -> None:
    path = random_file(tmp_path / "lora.safetensors", 3 * PART)
    proxy.fail(2, 500, 500)
    with Uploader(client, tmp_path / "states", backoff=0.05, session=proxied(proxy)) as up:
        result = up.upload(path, "Lora")
    assert dict(proxy.puts) == {1: 1, 2: 3, 3: 1}
    assert client.get_checkpoint(result.checkpoint_id)["status"] == "Active"
    assert result.sha256 == sha256_of(path)


def test_an_expired_url_is_replaced_by_a_fresh_one_from_the_api(
    client: ApiClient, proxy: PartProxy, tmp_path: Path
) -> None:
    path = random_file(tmp_path / "vae.safetensors", 2 * PART)
    proxy.fail(2, EXPIRED)
    with Uploader(client, tmp_path / "states", attempts=1, session=proxied(proxy)) as up:
        result = up.upload(path, "VAE")
    assert dict(proxy.puts) == {1: 1, 2: 2}
    assert client.get_checkpoint(result.checkpoint_id)["status"] == "Active"


def test_a_crash_in_the_middle_resumes_with_only_the_missing_parts(
    client: ApiClient, proxy: PartProxy, tmp_path: Path
) -> None:
    path = random_file(tmp_path / "big.safetensors", 6 * PART)
    states = tmp_path / "states"
    proxy.delay = 0.2

    def crash(progress: object) -> None:
        if sum(proxy.forwarded.values()) >= 3:
            raise KeyboardInterrupt

    with Uploader(client, states, workers=2, session=proxied(proxy, 2)) as up:
        with pytest.raises(KeyboardInterrupt):
            up.upload(path, "Lora", on_progress=crash)
        state = up.resume_state(path)
    assert state is not None and 0 < len(state.missing()) < 6
    before = proxy.puts.copy()
    proxy.delay = 0.0
    with Uploader(client, states, workers=2, session=proxied(proxy, 2)) as up:
        result = up.upload(path, "Lora")
    resent = sorted((proxy.puts - before).elements())
    assert resent == state.missing()
    assert result.reused_parts == 6 - len(state.missing())
    checkpoint = client.get_checkpoint(result.checkpoint_id)
    assert (checkpoint["status"], checkpoint["size"]) == ("Active", path.stat().st_size)
    assert checkpoint["sha256"] == sha256_of(path)


# -- the command line, as a process --------------------------------------------------------------


def settings_for(client: ApiClient, stack: Stack, tmp_path: Path) -> Path:
    """The settings file the tab would have written after signing in."""
    settings = tmp_path / "webui" / "sagemaker" / "settings.json"
    store = SettingsStore(settings)
    store.save_connection(stack.url, stack.api_token)
    assert client.refresh_token and client.username
    store.save_user_session("", client.username, client.refresh_token)
    return settings


def cli_env(proxy: PartProxy | None) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key.lower() not in ("http_proxy", "https_proxy", "no_proxy", "all_proxy")
    }
    env.update({"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"})
    if proxy is not None:
        env["HTTP_PROXY"] = proxy.url
    return env


def test_the_command_resumes_after_being_killed_and_sends_only_the_missing_parts(
    client: ApiClient, stack: Stack, proxy: PartProxy, tmp_path: Path
) -> None:
    """The issue's "interrupted half way" case, with the process killed outright."""
    path = random_file(tmp_path / "model.safetensors", 8 * PART + 1)
    settings = settings_for(client, stack, tmp_path)
    command = [sys.executable, "-m", "aws_extension", "upload", str(path), "--type", "Lora"]
    command += ["--settings", str(settings), "--workers", "2"]
    proxy.delay = 0.2
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        env=cli_env(proxy),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while sum(proxy.forwarded.values()) < 4:
        assert child.poll() is None, child.communicate()[0]
        assert time.monotonic() < deadline, "the upload did not get going"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=30)

    state = UploadStates(settings.parent / "uploads").load(stack.url, path)
    assert state is not None, "the killed upload left no resume state"
    missing = state.missing()
    assert 0 < len(missing) < 9
    before = proxy.puts.copy()
    proxy.delay = 0.0
    done = subprocess.run(command, cwd=ROOT, env=cli_env(proxy), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert sorted((proxy.puts - before).elements()) == missing
    assert f"{9 - len(missing)} of 9 parts from an earlier try" in done.stdout
    [model] = client.list_checkpoints(type="Lora", name="model.safetensors").items
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


def test_the_command_uploads_256_mib_with_bounded_memory(
    client: ApiClient, stack: Stack, tmp_path: Path
) -> None:
    path = tmp_path / "sparse.safetensors"
    size = 256 * MIB
    with path.open("wb") as handle:  # sparse: costs no disk, reads as zeros
        handle.truncate(size)
    settings = settings_for(client, stack, tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", _MEASURED, str(path), "--type", "Lora", "--settings", str(settings)],
        cwd=ROOT,
        env=cli_env(None),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # VmHWM of the process image itself (ru_maxrss would include the forking pytest).
    peak_kib = int(done.stderr.rsplit("VmHWM:", 1)[1].split()[0])
    print(f"peak RSS of the upload command: {peak_kib / 1024:.0f} MiB")
    assert peak_kib * 1024 < 150 * 10**6, f"peak RSS {peak_kib / 1024:.0f} MiB"
    [model] = client.list_checkpoints(name="sparse.safetensors").items
    zeros = hashlib.sha256()
    for _ in range(size // MIB):
        zeros.update(bytes(MIB))
    assert (model["status"], model["size"], model["sha256"]) == ("Active", size, zeros.hexdigest())
