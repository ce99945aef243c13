"""Settings from the environment: a FRAUDOPS_* variable nothing reads is named with its near match."""

from __future__ import annotations

import logging

import pytest

from fraudops.core.config import Settings, get_settings, unknown_variables


def test_an_unknown_variable_is_warned_about_with_its_near_match(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FRAUDOPS_CAPTURE_ENABLED", "false")
    monkeypatch.setenv("FRAUDOPS_MODEL_REFRESH_SECOND", "1")
    monkeypatch.setenv("FRAUDOPS_API_PORT", "8100")  # a real setting: no warning
    get_settings.cache_clear()
    with caplog.at_level(logging.WARNING, logger="fraudops.config"):
        get_settings()
    get_settings.cache_clear()
    warnings = [record.getMessage() for record in caplog.records]
    assert any("FRAUDOPS_CAPTURE_ENABLED" in w and "did you mean FRAUDOPS_CAPTURE?" in w for w in warnings)
    assert any("did you mean FRAUDOPS_MODEL_REFRESH_SECONDS?" in w for w in warnings)
    assert not any("FRAUDOPS_API_PORT " in w for w in warnings)


def test_variables_read_outside_the_settings_are_not_unknown() -> None:
    assert unknown_variables({"FRAUDOPS_ACTOR": "me", "FRAUDOPS_SOAK_SECONDS": "5", "HOME": "/root"}) == []
    assert unknown_variables({"FRAUDOPS_NOTHING_LIKE_IT_AT_ALL": "1"})[0].endswith("configuration table)")


def test_batch_check_turns_capture_off_with_a_variable_the_settings_read(monkeypatch: pytest.MonkeyPatch) -> None:
    from fraudops_dev.batch_check import worker_environment

    environment = worker_environment({"FRAUDOPS_STATE_DIR": "/tmp/x"}, "key")
    assert unknown_variables({k: v for k, v in environment.items() if v is not None}) == []
    for key, value in environment.items():
        if key.startswith("FRAUDOPS_") and value is not None:
            monkeypatch.setenv(key, value)
    assert Settings().capture is False
