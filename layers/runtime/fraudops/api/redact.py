"""Credentials never reach a log: a key sent as ``?api_key=`` (or any credential-like query parameter)
is masked in every logged URL, whatever logs it (uvicorn's access log, our own lines)."""

from __future__ import annotations

import logging
import re

# Query parameters that carry a secret: API keys under their usual names, tokens, presigned-URL signatures.
_CREDENTIAL = re.compile(
    r"(?i)([?&;](?:api[_-]?key|x-api-key|key|apikey|token|access[_-]?token|auth|authorization|password|secret"
    r"|signature|x-amz-signature|x-amz-credential|x-amz-security-token)=)[^&;#\s\"']*"
)
MASK = "[REDACTED]"


def redact_url(text: str) -> str:
    """``text`` with the value of every credential-like query parameter replaced by ``[REDACTED]``."""
    return _CREDENTIAL.sub(lambda match: match.group(1) + MASK, text)


class RedactCredentials(logging.Filter):
    """A logging filter for handlers: masks credentials in the message and its arguments (uvicorn's
    access log passes the path with its query string as an argument)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_url(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_url(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: redact_url(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True
