"""`python -m aws_extension local`: run the middleware on this machine.

Binds the listening socket itself before anything else, so that `--port 0` prints the port
really in use and a busy port fails before a first-start password could be made and lost.
Then prints the banner (the labelled lines are parsed by tests and the demo, keep them),
and serves with uvicorn until Ctrl-C or SIGTERM, which end it with exit code 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import socket
import sys
import threading
from pathlib import Path

import uvicorn

from aws_extension.local.bootstrap import SUPER_ADMIN, bootstrap
from aws_extension.local.state import LocalState, StateError, default_state_dir, open_state
from aws_extension.middleware.app import create_app
from aws_extension.middleware.config import Config
from aws_extension.middleware.records.sqlite import SqliteRecords
from aws_extension.middleware.security.passwords import PasswordHasher


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m aws_extension local",
        description="Run the sd-webui-sagemaker middleware locally on SQLite.",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help=f"folder for secrets and records (default: {default_state_dir()})",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8080, help="port; 0 picks a free one")
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a --host other than loopback (there is no TLS: trusted networks only)",
    )
    return parser


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        # Listening now lets clients that read the banner connect at once; uvicorn accepts
        # the queued connections as soon as it runs.
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


def url_of(host: str, sock: socket.socket) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def print_banner(url: str, state: LocalState, password: str | None) -> None:
    lines = [
        f"sd-webui-sagemaker local stack (state in {state.directory})",
        f"API URL:   {url}",
        f"API token: {state.api_token}",
    ]
    if password is not None:
        lines += [
            f"Username:  {SUPER_ADMIN}",
            f"Password:  {password}",
            "The password is shown only this once: sign in with it in the Amazon SageMaker"
            " tab, then change it there.",
        ]
    else:
        lines.append(
            "Existing credentials kept: sign in with the users created before (the admin"
            " password was shown on the first start)."
        )
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)


def serve(config: Config, records: SqliteRecords, sock: socket.socket) -> None:
    """Run uvicorn on `sock` until a signal stops it.

    uvicorn handles SIGINT/SIGTERM itself and, after shutting down, re-raises the signal
    with the previous handlers restored; routing SIGTERM to the same handler as SIGINT makes
    both end as KeyboardInterrupt, which the caller turns into exit code 0.
    """
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config, records),
            log_level="warning",
            access_log=False,
            lifespan="off",
        )
    )
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if in_main_thread else None
    try:
        server.run(sockets=[sock])
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not is_loopback(args.host) and not args.allow_remote:
        print(
            f"Refusing to listen on {args.host}: the local stack speaks plain HTTP, so anyone"
            " who can reach it could read tokens and try passwords. Use 127.0.0.1, or pass"
            " --allow-remote on a network you trust.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        state = open_state(args.state_dir or default_state_dir())
    except (StateError, OSError) as error:
        print(f"Cannot use the state folder: {error}", file=sys.stderr)
        return 1
    try:
        sock = bind(args.host, args.port)
    except OSError as error:
        print(
            f"Cannot listen on {args.host}:{args.port} ({error.strerror}); pick another --port"
            " (0 picks a free one).",
            file=sys.stderr,
        )
        return 1
    config = Config(api_tokens=(state.api_token,), signing_secret=state.signing_secret)
    records = SqliteRecords(state.records_path)
    try:
        password = bootstrap(records, PasswordHasher(config.scrypt))
        print_banner(url_of(args.host, sock), state, password)
        serve(config, records, sock)
    except KeyboardInterrupt:
        pass
    finally:
        records.close()
        sock.close()
    print("Stopped.", flush=True)
    return 0
