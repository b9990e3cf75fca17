"""The endpoint runtime: what runs inside the SageMaker container (and in the local stack).

`python -m aws_extension.endpoint serve` answers SageMaker's container contract (GET /ping,
POST /invocations on port 8080). `Runtime(engine, cache).invoke(body)` is the same work
without HTTP, for the local compute backend's worker threads.

Importing this package stays cheap: torch and diffusers are imported only by the diffusers
engine when it starts, so the middleware and the local stack can import the runtime's names
without paying for them. The WebUI process never imports this package.
"""
