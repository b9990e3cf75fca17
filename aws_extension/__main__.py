"""Command line: `python -m aws_extension COMMAND ...`.

Each command imports its own module only when chosen, because the commands live in
different Python worlds: `local` and `demo` need the server side (FastAPI, pydantic 2),
`ui` needs only the client side (gradio), `upload` only requests.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "local": ("aws_extension.local.cli", "run the embedded local stack (middleware on SQLite)"),
    "ui": ("aws_extension.ui.standalone", "serve the Amazon SageMaker tab in a plain gradio app"),
    "demo": ("aws_extension.local.demo", "run the local stack and the tab together"),
    "upload": ("aws_extension.upload_cli", "upload model files to the cloud (resumable)"),
    "runtime": ("aws_extension.endpoint.cli", "run the endpoint runtime (SageMaker container)"),
}


def _usage() -> str:
    lines = ["usage: python -m aws_extension COMMAND [options]", "", "commands:"]
    lines += [f"  {name:<8}{help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines.append("\nRun `python -m aws_extension COMMAND --help` for a command's options.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        print(f"unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[command][0])
    return int(module.main(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
