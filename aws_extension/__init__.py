"""sd-webui-sagemaker: an Amazon SageMaker tab for the Stable Diffusion WebUI.

This package is imported inside the WebUI's own process, so it must stay cheap to import:
every sub-package loads its heavy dependencies lazily.
"""

from __future__ import annotations

__version__ = "0.1.0"
