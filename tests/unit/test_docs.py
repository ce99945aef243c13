"""Documentation that drifts is worse than none: the README must list every setting."""

from __future__ import annotations

from pathlib import Path

from fraudops.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"FRAUDOPS_{name.upper()}" for name in Settings.model_fields if f"`FRAUDOPS_{name.upper()}`" not in readme
    ]
    assert missing == []


def test_readme_names_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
