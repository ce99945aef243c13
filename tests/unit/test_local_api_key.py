"""Issue 22 item 7: the local stack's API key file is written whole or not at all."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from fraudops_dev.local import local_api_key

from fraudops.core.config import Settings


def test_an_empty_key_file_left_by_a_full_disk_is_replaced(tmp_path: Path) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "api-key").write_bytes(b"")  # what a full disk left behind before the fix
    assert local_api_key(settings) is None  # an empty file is no key
    key = local_api_key(settings, create=True)
    assert key and len(key) >= 24
    assert (tmp_path / "state" / "api-key").read_text().strip() == key
    assert (tmp_path / "state" / "api-key").stat().st_mode & 0o777 == 0o600
    assert local_api_key(settings) == key


def test_a_full_disk_leaves_no_key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    settings = Settings(state_dir=tmp_path / "state")

    def full(fd: int) -> None:  # a full disk shows at the latest when the data is flushed to it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        local_api_key(settings, create=True)
    monkeypatch.undo()
    assert not (tmp_path / "state" / "api-key").exists()
    assert list((tmp_path / "state").iterdir()) == []  # no temporary file either
