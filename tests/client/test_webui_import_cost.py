"""Loading the shim must be cheap: A1111 executes it on every start and every UI reload."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FAKE_A1111 = Path(__file__).resolve().parent / "fake_a1111"
SHIM = ROOT / "scripts" / "sagemaker_tab.py"

#: Budget for executing scripts/sagemaker_tab.py in a fresh interpreter.
BUDGET_S = 0.2

_PROBE = textwrap.dedent(
    """
    import json, sys, time
    sys.path.insert(0, {fake!r})
    from modules import script_callbacks, script_loading  # the WebUI's own, loaded before us
    before = set(sys.modules)
    start = time.perf_counter()
    script_loading.load_module({shim!r})
    elapsed = time.perf_counter() - start
    loaded = set(sys.modules) - before
    print(json.dumps({{
        "seconds": elapsed,
        "heavy": sorted(m for m in ("gradio", "requests", "PIL", "numpy", "pydantic", "fastapi")
                        if m in loaded),
        "callbacks": len(script_callbacks.callback_map["callbacks_ui_tabs"]),
    }}))
    """
)


def test_the_shim_loads_fast_and_without_gradio_or_requests():
    probe = _PROBE.format(fake=str(FAKE_A1111), shim=str(SHIM))
    runs = []
    for _ in range(3):  # the best of three: a busy CI machine adds noise, never removes cost
        done = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    best = min(runs, key=lambda r: r["seconds"])
    print(f"scripts/sagemaker_tab.py loads in {best['seconds'] * 1000:.1f} ms")

    assert best["callbacks"] == 1
    assert best["heavy"] == []
    assert best["seconds"] < BUDGET_S
