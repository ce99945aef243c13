"""The fraud-scoring API, in the layout of FastAPI's full-stack template: ``app`` (routes), ``schemas``,
``errors``, ``middleware``, ``deps`` (the key check) and ``keys`` (where keys come from); ``redact`` masks
credentials in logged URLs (the local server's access log). An adapter: it imports the families below it
(``serving`` for the model and the decision, ``monitoring`` for capture and labels, ``production`` for the
history), nothing imports it but ``batch`` (the row rules) and the handler."""

from fraudops.api.app import build_default_app, create_app
from fraudops.api.schemas import EXAMPLE_TRANSACTION, Transaction

__all__ = ["EXAMPLE_TRANSACTION", "Transaction", "build_default_app", "create_app"]
