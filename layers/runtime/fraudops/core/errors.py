"""Every error fraudops raises on purpose, under one base class.

The CLI prints any ``FraudopsError`` as one line; the Lambda runtime reports the class name as
``errorType``, which the state machines match in ``Catch`` (so these names are part of the contract).
"""

from __future__ import annotations


class FraudopsError(RuntimeError):
    """Base class: the message says what is wrong and how to fix it."""


class ConfigError(FraudopsError, ValueError):
    """A setting is invalid, or an action needs a setting that is missing."""


class DataError(FraudopsError):
    """The transactions table is missing, empty or unusable, or an import file is unreadable."""


class InvalidInputError(FraudopsError, ValueError):
    """A function's event does not have the shape the function takes."""


class StoreError(FraudopsError):
    """The model store could not be reached or holds something unusable."""


class RegistryConflictError(StoreError):
    """Someone else updated the registry since this session read it; retry the whole operation."""


class ArtifactMissingError(StoreError):
    """The object is not there (deleted or never written), as opposed to the store being unreachable."""


class ModelLoadError(FraudopsError):
    """A model artifact is missing, corrupted or does not fit the feature code."""


class FeatureMismatchError(FraudopsError, ValueError):
    """A model asks for features this code cannot build (it was trained by other feature code)."""


class MetricsError(FraudopsError, ValueError):
    """Metrics are undefined for these labels (e.g. a slice with no fraud)."""


class TrainingError(FraudopsError):
    """Training could not produce a model; nothing was registered."""


class PromotionError(FraudopsError):
    """Promotion could not run (no candidate, no data, store unreachable); Production is unchanged."""


class ModelUnavailableError(FraudopsError):
    """No model can be served yet (nothing promoted, or the store is unreachable)."""


def disk_full_cause(error: BaseException) -> str | None:
    """The first line of a "no space left" error anywhere in ``error``'s chain (SQLite says "database or
    disk is full", Python "[Errno 28] No space left on device"), else None. SQLAlchemy and MLflow wrap it
    in messages that start elsewhere ("Query-invoked autoflush"), so the chain is searched."""
    import errno

    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        text = str(current)
        if (isinstance(current, OSError) and current.errno == errno.ENOSPC) or "No space left on device" in text:
            return "no space left on device"
        if "database or disk is full" in text:
            return "database or disk is full"
        for linked in (getattr(current, "orig", None), current.__cause__, current.__context__):  # orig: SQLAlchemy's
            if isinstance(linked, BaseException):
                pending.append(linked)
    return None
