"""The fraud-scoring API, in the layout of FastAPI's full-stack template: ``app`` (routes), ``schemas``,
``errors``, ``middleware``, ``deps`` (the key check) and ``keys`` (where keys come from)."""

from fraudops.api.app import build_default_app, create_app
from fraudops.api.schemas import EXAMPLE_TRANSACTION, Transaction

__all__ = ["EXAMPLE_TRANSACTION", "Transaction", "build_default_app", "create_app"]
