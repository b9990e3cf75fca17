"""Like A1111's: the parsed command line (only the options the extension can meet)."""

import argparse

from modules import paths_internal

parser = argparse.ArgumentParser(add_help=False)
parser.add_argument("--data-dir", type=str, default=paths_internal.data_path)
parser.add_argument("--gradio-auth", type=str, default=None)
parser.add_argument("--freeze-settings", action="store_true")
parser.add_argument("--freeze-settings-in-sections", type=str, default=None)
parser.add_argument("--freeze-specific-settings", type=str, default=None)
parser.add_argument("--hide-ui-dir-config", action="store_true")
cmd_opts = parser.parse_known_args()[0]
