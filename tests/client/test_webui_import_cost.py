"""Loading the shim must be cheap: A1111 executes it on every start and every UI reload.

What keeps it cheap is structural, so that is what the test asserts: loading the shim pulls
in none of the heavy libraries (they load later, inside A1111's UI callbacks). The time it
takes is measured by `benchmarks/import_cost.py`, not asserted here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKE_A1111 = Path(__file__).resolve().parent / "fake_a1111"
SHIM = ROOT / "scripts" / "sagemaker_tab.py"

_PROBE = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {fake!r})
    from modules import script_callbacks, script_loading  # the WebUI's own, loaded before us
    before = set(sys.modules)
    script_loading.load_module({shim!r})
    loaded = set(sys.modules) - before
    print(json.dumps({{
        "heavy": sorted(m for m in ("gradio", "requests", "PIL", "numpy", "pydantic", "fastapi")
                        if m in loaded),
        "callbacks": len(script_callbacks.callback_map["callbacks_ui_tabs"]),
    }}))
    """
)


def test_the_shim_registers_without_loading_heavy_libraries():
    probe = _PROBE.format(fake=str(FAKE_A1111), shim=str(SHIM))
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["callbacks"] == 1
    assert result["heavy"] == []
