"""The runtime's HTTP side imports no torch: the local stack may import it cheaply."""

from __future__ import annotations

import subprocess
import sys

from tests.endpoint.fake_a1111 import ROOT


def test_runtime_server_and_webui_engine_import_without_torch() -> None:
    code = (
        "import sys\n"
        "import aws_extension.endpoint.cli, aws_extension.endpoint.runtime\n"
        "import aws_extension.endpoint.engines.webui_engine\n"
        "import aws_extension.endpoint.engines.diffusers_engine\n"
        "heavy = {'torch', 'diffusers', 'transformers'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
