"""Like A1111's: `--data-dir` and `--models-dir` are parsed from sys.argv at import time."""

import argparse
import os
import pathlib

normalized_filepath = lambda filepath: str(pathlib.Path(filepath).absolute())  # noqa: E731 - as in A1111

modules_path = os.path.dirname(os.path.realpath(__file__))
script_path = os.path.dirname(modules_path)

parser_pre = argparse.ArgumentParser(add_help=False)
parser_pre.add_argument("--data-dir", type=str, default=os.path.dirname(modules_path))
parser_pre.add_argument("--models-dir", type=str, default=None)
cmd_opts_pre = parser_pre.parse_known_args()[0]

data_path = cmd_opts_pre.data_dir

models_path = (
    cmd_opts_pre.models_dir if cmd_opts_pre.models_dir else os.path.join(data_path, "models")
)
extensions_dir = os.path.join(data_path, "extensions")
default_output_dir = os.path.join(data_path, "outputs")
extensions_builtin_dir = os.path.join(script_path, "extensions-builtin")
