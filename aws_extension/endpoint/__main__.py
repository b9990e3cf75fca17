"""`python -m aws_extension.endpoint serve` (what SageMaker runs) and `make-demo-model`."""

from __future__ import annotations

import sys

from aws_extension.endpoint.cli import main

if __name__ == "__main__":
    sys.exit(main())
