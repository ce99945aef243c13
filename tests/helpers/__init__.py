"""What the tests share: settings, trained models, event builders, the local store, fault injection.
Imported as ``from tests.helpers.<module> import ...`` (never from conftest)."""
