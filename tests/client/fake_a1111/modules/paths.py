"""Like A1111's `modules/paths.py`, minus its sys.path set-up for the bundled repositories."""

from modules.paths_internal import (  # noqa: F401
    data_path,
    extensions_builtin_dir,
    extensions_dir,
    models_path,
    script_path,
)
