"""Where endpoints live and jobs run: SageMaker on AWS, runtime processes on the local stack.

`base.py` holds the two interfaces the services use; each backend implements both.
"""

from aws_extension.middleware.compute.base import (
    Compute,
    EndpointBackend,
    EndpointSpec,
    EndpointState,
    JobBackend,
    JobOutcome,
    JobSink,
    JobSubmission,
)

__all__ = [
    "Compute",
    "EndpointBackend",
    "EndpointSpec",
    "EndpointState",
    "JobBackend",
    "JobOutcome",
    "JobSink",
    "JobSubmission",
]
