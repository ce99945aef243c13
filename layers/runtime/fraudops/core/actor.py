"""Who makes a change (a Production change, a policy publish or rollback), for the history records.

Its own small module, free of the training stack: the API image (no scikit-learn, no pandas) records
policy changes too, and ``fraudops.production.history`` reaches scikit-learn through promotion and metrics.
"""

from __future__ import annotations

import getpass
import os
import socket


def default_actor() -> str:
    """Who acts: the Step Functions execution or Lambda request in AWS, else user@host."""
    if "FRAUDOPS_ACTOR" in os.environ:
        return os.environ["FRAUDOPS_ACTOR"]
    if "AWS_LAMBDA_FUNCTION_NAME" in os.environ:
        return f"lambda:{os.environ['AWS_LAMBDA_FUNCTION_NAME']}"
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
