"""Like A1111 1.10's `modules/shared.py`, as it is once start-up (`shared_init`) has created
`opts`, `state` and `prompt_styles`."""

import os
import sys

from modules import options, shared_cmd_options, shared_options, shared_state, styles
from modules.paths_internal import data_path, extensions_dir, models_path, script_path  # noqa: F401

cmd_opts = shared_cmd_options.cmd_opts
parser = shared_cmd_options.parser

demo = None

# A1111 fills data_labels from shared_options.options_templates at start-up; extensions add
# theirs through on_ui_settings.
opts = options.Options(shared_options.options_templates, shared_options.restricted_opts)
restricted_opts = shared_options.restricted_opts

state = shared_state.State()

styles_filename = [os.path.join(data_path, "styles.csv")]
prompt_styles = styles.StyleDatabase(styles_filename)

# Without a local checkpoint the model fails to load and this stays None.
sd_model = None

progress_print_out = sys.stdout

options_section = options.options_section
OptionInfo = options.OptionInfo
