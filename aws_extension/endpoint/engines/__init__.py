"""The engines that turn a job into images: `diffusers` (in-process) and `webui` (A1111)."""
