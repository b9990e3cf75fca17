"""The local stack as a real process for the benchmarks, with its banner read."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class LocalStack:
    """`python -m aws_extension local --port 0` in `state_dir`; `url`, `token`, `password`."""

    def __init__(self, state_dir: Path, *extra: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "aws_extension", "local", "--port", "0", *extra]
        self.process = subprocess.Popen(
            [*command, "--state-dir", str(state_dir)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        fields: dict[str, str] = {}
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        for line in self.process.stdout:
            label, _, value = line.partition(":")
            fields[label.strip()] = value.strip()
            if line.strip() == "Press Ctrl-C to stop." or time.monotonic() > deadline:
                break
        self.url, self.token, self.password = (
            fields["API URL"],
            fields["API token"],
            fields["Password"],
        )

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
