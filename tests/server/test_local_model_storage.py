"""The local stack's model storage: the blob secret in the state folder and the sweeper."""

from __future__ import annotations

import json
import stat
import threading
from pathlib import Path

from aws_extension.local.state import open_state, write_private_json
from aws_extension.local.sweeper import PeriodicSweep


def test_a_blob_secret_is_made_once_and_older_state_folders_gain_one(tmp_path: Path) -> None:
    fresh = open_state(tmp_path / "fresh")
    assert len(fresh.blob_secret) >= 60
    distinct = fresh.blob_secret not in (fresh.signing_secret, fresh.api_token)
    assert distinct
    kept = open_state(tmp_path / "fresh").blob_secret == fresh.blob_secret
    assert kept
    hidden = fresh.blob_secret not in repr(fresh)
    assert hidden

    older = tmp_path / "older"
    older.mkdir()
    write_private_json(older / "config.json", {"api_token": "t" * 40, "signing_secret": "s" * 64})
    upgraded = open_state(older)
    stored = json.loads((older / "config.json").read_text())
    assert stored["api_token"] == "t" * 40
    assert stored["blob_secret"] == upgraded.blob_secret
    assert stat.S_IMODE((older / "config.json").stat().st_mode) == 0o600


def test_the_blobs_folder_is_private_and_made_on_demand(tmp_path: Path) -> None:
    state = open_state(tmp_path)
    assert not (tmp_path / "blobs").exists()
    folder = state.blobs_folder()
    assert folder == tmp_path / "blobs"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_the_sweeper_runs_at_once_and_then_periodically_despite_failures() -> None:
    calls: list[int] = []
    third = threading.Event()

    def sweep() -> None:
        calls.append(len(calls))
        if len(calls) >= 3:
            third.set()
        raise RuntimeError("the records are unreachable")  # logged, then tried again

    sweeper = PeriodicSweep(sweep, interval_s=0.01)
    sweeper.start()
    try:
        assert third.wait(timeout=5)
    finally:
        sweeper.stop(timeout=5)
    count = len(calls)
    assert count >= 3
    threading.Event().wait(0.05)
    assert len(calls) == count  # stopped for good


def test_a_stop_does_not_wait_for_the_interval() -> None:
    started = threading.Event()
    sweeper = PeriodicSweep(started.set, interval_s=3600)
    sweeper.start()
    assert started.wait(timeout=5)
    finished = threading.Event()
    threading.Thread(target=lambda: (sweeper.stop(timeout=5), finished.set())).start()
    assert finished.wait(timeout=2)
