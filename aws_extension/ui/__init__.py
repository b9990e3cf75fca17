"""Gradio builders of the Amazon SageMaker tab.

Talks only to `aws_extension.client`, never to A1111's `modules.*`: whatever depends on the
host (where the settings live, the network options, who the WebUI user is) arrives in a
`context.UiContext`. That is how the very same tab runs inside the WebUI, in the standalone
app (`python -m aws_extension ui`) and in tests.
"""
