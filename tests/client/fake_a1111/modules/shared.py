"""Like A1111 1.10's `modules/shared.py`, as it is once start-up has created `opts`."""

import sys

from modules import options, shared_cmd_options
from modules.paths_internal import data_path, extensions_dir, models_path, script_path  # noqa: F401

cmd_opts = shared_cmd_options.cmd_opts
parser = shared_cmd_options.parser

demo = None
state = None

# A1111 fills data_labels from shared_options.options_templates at start-up; extensions add
# theirs through on_ui_settings.
opts = options.Options({}, set())
restricted_opts = set()

progress_print_out = sys.stdout

options_section = options.options_section
OptionInfo = options.OptionInfo
