"""The model cache's staleness bound, with a fake clock: one store check per refresh interval."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudops.core.errors import ModelUnavailableError
from fraudops.serving.provider import LoadedModel, ModelProvider
from tests.helpers.models import train_local_model
from tests.helpers.stack import fast_settings


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def loaded(small_db: Path) -> LoadedModel:
    return train_local_model(fast_settings(db_path=small_db))


def test_alias_is_rechecked_once_per_interval(loaded: LoadedModel, small_db: Path) -> None:
    clock, checks, loads = Clock(), [], []

    def load(_: object) -> LoadedModel:
        loads.append(1)
        return loaded

    def etag(_: object) -> str:
        checks.append(1)
        return loaded.etag

    provider = ModelProvider(fast_settings(db_path=small_db, model_refresh_seconds=60), load, etag, clock)
    assert provider.get() is loaded and (len(loads), len(checks)) == (1, 0)
    clock.now += 59
    provider.get()
    assert (len(loads), len(checks)) == (1, 0)  # within the bound: no store call at all
    clock.now += 1
    provider.get()
    assert (len(loads), len(checks)) == (1, 1)  # one HEAD; unchanged ETag, so no download


def test_without_a_model_it_retries_within_five_seconds(small_db: Path) -> None:
    clock, attempts = Clock(), []

    def load(_: object) -> None:
        attempts.append(1)

    provider = ModelProvider(fast_settings(db_path=small_db, model_refresh_seconds=60), load, clock=clock)
    for _ in range(3):
        with pytest.raises(ModelUnavailableError, match="no model has been promoted"):
            provider.get()
    assert len(attempts) == 1
    clock.now += 5
    with pytest.raises(ModelUnavailableError):
        provider.get()
    assert len(attempts) == 2
