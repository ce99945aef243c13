"""Lazy package exports (PEP 562): a family's ``__init__`` names its entry points without importing them.

Why: the API image has no xgboost, scikit-learn, pandas or MLflow, and a Lambda's cold start pays for every
import; an ``__init__`` that imported its heavy modules would load them for anyone who needs one light
module of the family (the API needs ``model.features``, never ``model.fraud_model``)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``exports`` maps each exported name to its module."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
