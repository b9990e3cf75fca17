"""How long A1111 spends loading the extension's script, against loading gradio itself.

A1111 executes every `scripts/*.py` of every extension at start-up and on each "Reload UI",
so the shim must cost well under 200 ms. Each figure is the best of `--runs` fresh
interpreters (a busy machine adds noise, never removes cost); the baseline, measured in the
same run, is `import gradio`, the import the shim defers to A1111's UI callbacks.

Run with the client environment's interpreter (gradio installed):
    .nox/client/bin/python benchmarks/import_cost.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FAKE_A1111 = ROOT / "tests" / "client" / "fake_a1111"
SHIM = ROOT / "scripts" / "sagemaker_tab.py"
BUDGET_MS = 200.0

SHIM_PROBE = textwrap.dedent(
    f"""
    import sys, time
    sys.path.insert(0, {str(FAKE_A1111)!r})
    from modules import script_loading
    start = time.perf_counter()
    script_loading.load_module({str(SHIM)!r})
    print(time.perf_counter() - start)
    """
)
GRADIO_PROBE = (
    "import time\nstart = time.perf_counter()\nimport gradio\nprint(time.perf_counter() - start)"
)


def best_ms(probe: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        done = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        times.append(float(done.stdout.strip().splitlines()[-1]) * 1000)
    return min(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    shim = best_ms(SHIM_PROBE, args.runs)
    gradio = best_ms(GRADIO_PROBE, args.runs)
    print(json.dumps({"shim_ms": round(shim, 1), "import_gradio_ms": round(gradio, 1)}))
    print(f"scripts/sagemaker_tab.py: {shim:7.1f} ms  (budget {BUDGET_MS:.0f} ms)")
    print(f"import gradio (baseline): {gradio:7.1f} ms")
    print(f"ratio shim / gradio:      {shim / gradio:7.3f}")
    return 0 if shim < BUDGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
