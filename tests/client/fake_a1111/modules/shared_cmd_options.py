"""Like A1111's: the parsed command line (only the options the extension can meet), with
the options that extensions add in their preload.py (the built-in Lora extension's
`--lora-dir`, and those of whatever is in `<data>/extensions`)."""

import argparse
import os

from modules import paths_internal, script_loading
from modules.paths_internal import normalized_filepath

parser = argparse.ArgumentParser(add_help=False)
parser.add_argument("--data-dir", type=str, default=paths_internal.data_path)
parser.add_argument("--ckpt-dir", type=normalized_filepath, default=None)
parser.add_argument("--vae-dir", type=normalized_filepath, default=None)
parser.add_argument(
    "--embeddings-dir",
    type=normalized_filepath,
    default=os.path.join(paths_internal.data_path, "embeddings"),
)
parser.add_argument(
    "--hypernetwork-dir",
    type=normalized_filepath,
    default=os.path.join(paths_internal.models_path, "hypernetworks"),
)
parser.add_argument("--gradio-auth", type=str, default=None)
parser.add_argument("--freeze-settings", action="store_true")
parser.add_argument("--freeze-settings-in-sections", type=str, default=None)
parser.add_argument("--freeze-specific-settings", type=str, default=None)
parser.add_argument("--hide-ui-dir-config", action="store_true")

script_loading.preload_extensions(paths_internal.extensions_dir, parser)
script_loading.preload_extensions(paths_internal.extensions_builtin_dir, parser)

cmd_opts = parser.parse_known_args()[0]
