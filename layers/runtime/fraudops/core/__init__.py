"""The foundation every family imports, and that imports no other part of fraudops.

- ``config``: every setting (``FRAUDOPS_*``), typed, one place (``Settings``, ``get_settings``);
- ``errors``: every error, one base class (``FraudopsError``); the state machines match their names;
- ``schema``: the PaySim columns and the value rules the API, the importer and batch scoring share;
- ``files``: crash-safe writes (temporary file, fsync, rename, fsync the folder);
- ``actor``: who makes a change (history and policy records);
- ``observability``: what the handlers' Powertools loggers share (imported by handlers only);
- ``exports``: lazy exports for the families whose modules are heavy.
"""

from fraudops.core.config import Settings, get_settings
from fraudops.core.errors import FraudopsError

__all__ = ["FraudopsError", "Settings", "get_settings"]
