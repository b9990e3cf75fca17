"""`python -m aws_extension.endpoint serve|make-demo-model`.

SageMaker runs the image with the single argument `serve`, and passes settings only as
environment variables (the model's `Environment`), so every option of `serve` falls back to
one: ENDPOINT_ENGINE, ENDPOINT_MODEL_CACHE, ENDPOINT_CACHE_BUDGET_GB, ENDPOINT_DEVICE,
ENDPOINT_CPU_THREADS, WEBUI_URL, WEBUI_DIR, WEBUI_MODELS_DIR, WEBUI_PORT, WEBUI_PYTHON,
WEBUI_ARGS; the port defaults to SAGEMAKER_BIND_TO_PORT or 8080.

The socket is bound before the engine starts (in a background thread), so /ping answers 503
while torch is imported or A1111 boots, and 200 from the moment a job would run.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path

from aws_extension.endpoint.engines.base import Engine
from aws_extension.endpoint.model_cache import ModelCache
from aws_extension.endpoint.runtime import Runtime
from aws_extension.endpoint.server import make_server

ENGINES = ("diffusers", "webui")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name) or default


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m aws_extension.endpoint")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve GET /ping and POST /invocations")
    serve.add_argument("--engine", choices=ENGINES, default=_env("ENDPOINT_ENGINE", "diffusers"))
    serve.add_argument("--host", default="0.0.0.0")  # noqa: S104 - a container listens on all
    serve.add_argument("--port", type=int, default=int(_env("SAGEMAKER_BIND_TO_PORT", "8080")))
    serve.add_argument(
        "--model-cache",
        type=Path,
        default=Path(_env("ENDPOINT_MODEL_CACHE", "/tmp/sd-model-cache")),  # noqa: S108
        help="folder for downloaded models (default: /tmp/sd-model-cache)",
    )
    serve.add_argument(
        "--cache-budget-gb",
        type=float,
        default=float(_env("ENDPOINT_CACHE_BUDGET_GB", "0")) or None,
        help="evict least recently used models beyond this size (default: no limit)",
    )
    serve.add_argument("--device", default=_env("ENDPOINT_DEVICE"), help="diffusers: cuda, cpu")
    serve.add_argument(
        "--cpu-threads",
        type=int,
        default=int(_env("ENDPOINT_CPU_THREADS", "0")) or None,
        help="diffusers: torch CPU threads (1 on a small shared CPU)",
    )
    serve.add_argument("--webui-url", default=_env("WEBUI_URL"), help="webui: a running A1111")
    serve.add_argument("--webui-dir", type=Path, default=_env("WEBUI_DIR"), help="webui: start it")
    serve.add_argument("--webui-models-dir", type=Path, default=_env("WEBUI_MODELS_DIR"))
    serve.add_argument("--webui-port", type=int, default=int(_env("WEBUI_PORT", "7861")))
    serve.add_argument("--webui-python", default=_env("WEBUI_PYTHON"))
    serve.add_argument("--webui-args", default=_env("WEBUI_ARGS", ""), help="extra A1111 flags")
    serve.add_argument("--log-level", default=_env("ENDPOINT_LOG_LEVEL", "INFO"))
    serve.add_argument(
        "--exit-with-stdin",
        action="store_true",
        help="stop when standard input closes: the local stack keeps a pipe open, so its"
        " runtimes end with it even when it is killed",
    )
    demo = commands.add_parser("make-demo-model", help="write the tiny random demo checkpoint")
    demo.add_argument("folder", type=Path)
    demo.add_argument("--seed", type=int, default=0)
    return parser


def build_engine(args: argparse.Namespace) -> Engine:
    config_root = args.model_cache / ".configs"
    if args.engine == "diffusers":
        from aws_extension.endpoint.engines.diffusers_engine import DiffusersEngine

        return DiffusersEngine(config_root, device=args.device, cpu_threads=args.cpu_threads)
    from aws_extension.endpoint.engines.webui_engine import WebuiEngine
    from aws_extension.endpoint.engines.webui_process import WebuiProcess, a1111_command

    if args.webui_url:
        if args.webui_models_dir is None:
            raise SystemExit("--webui-url needs --webui-models-dir: A1111's models folder")
        return WebuiEngine(args.webui_url, args.webui_models_dir, args.model_cache)
    if args.webui_dir is None:
        raise SystemExit("the webui engine needs --webui-url or --webui-dir")
    command = a1111_command(
        args.webui_dir, args.webui_port, args.webui_python, shlex.split(args.webui_args)
    )
    return WebuiEngine(
        f"http://127.0.0.1:{args.webui_port}",
        args.webui_models_dir or args.webui_dir / "models",
        args.model_cache,
        process=WebuiProcess(command, args.webui_dir),
    )


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    budget = int(args.cache_budget_gb * 1024**3) if args.cache_budget_gb else None
    runtime = Runtime(build_engine(args), ModelCache(args.model_cache, budget))
    server = make_server(runtime, args.host, args.port)
    host, port = server.server_address[:2]
    print(f"Endpoint runtime ({args.engine}) on http://{host}:{port}", flush=True)

    def stop(*_: object) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.exit_with_stdin:
        threading.Thread(target=_stop_at_eof, args=(stop,), name="stdin-watch", daemon=True).start()
    threading.Thread(target=runtime.start, name="engine-start", daemon=True).start()
    try:
        server.serve_forever()
    finally:
        server.server_close()
        runtime.close()
    return 0


def _stop_at_eof(stop: Callable[[], None]) -> None:
    """Read standard input until it closes (the parent process ended), then stop."""
    while sys.stdin.buffer.read(4096):
        pass
    stop()


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "make-demo-model":
        from aws_extension.endpoint.tiny_model import main as make_demo_model

        return make_demo_model([str(args.folder), "--seed", str(args.seed)])
    return serve(args)
