"""Documentation that drifts is worse than none: the README must list every setting."""

from __future__ import annotations

from pathlib import Path

from fraudops.core.config import Settings

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


def test_readme_and_docs_links_anchors_and_named_paths_resolve() -> None:
    """`make lint` runs the same check (issue 18 item 14)."""
    from fraudops_dev.doclinks import check_file, markdown_files

    problems = [str(p) for path in markdown_files(["README.md", "docs"], ROOT) for p in check_file(path, ROOT)]
    assert problems == []


def test_the_link_check_finds_a_moved_file_a_missing_anchor_and_a_stale_path(tmp_path: Path) -> None:
    from fraudops_dev.doclinks import check_file

    (tmp_path / "docs").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "here.py").write_text("")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Title\n\n## Coming from the `original` project\n\n"
        "[ok](#coming-from-the-original-project) [ok](../tests/here.py) `tests/here.py` <https://example.org>\n"
        "[gone](../layers/emulation.py)\n[anchor](#no-such-heading)\n`tests/test_datagen.py`\n"
        "```\n[inside a fence](nowhere.md)\n```\n[own](https://github.com/fraudops/fraudops#x)\n"
    )
    problems = sorted(check_file(page, tmp_path), key=lambda p: p.line)
    assert sorted(p.line for p in problems) == [6, 7, 8, 12], problems
    assert "does not exist" in problems[0].message and "#no-such-heading" in problems[1].message


def test_the_readme_lists_every_cli_command() -> None:
    from fraudops_dev.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    commands = dict(build_parser()._subparsers._group_actions[0].choices or {})  # type: ignore[union-attr]
    start = readme.index("The CLI behind the Makefile is `fraudops`")
    listing = readme[start : readme.index("A problem", start)]
    missing = [name for name in commands if name != "retrain-local" and f"`{name}`" not in listing]
    assert missing == []


def test_the_old_format_hint_points_at_a_real_readme_section() -> None:
    from fraudops_dev.doclinks import anchors

    from fraudops.api.errors import README_ORIGINAL_PROJECT

    file, _, anchor = README_ORIGINAL_PROJECT.partition("#")
    assert not README_ORIGINAL_PROJECT.startswith("http") and anchor in anchors(ROOT / file)


def test_the_readme_names_the_python_the_makefile_uses() -> None:
    readme = (ROOT / "README.md").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "python3.12" in makefile and "Needs Python 3.12" in readme and "tested on 3.11" not in readme
    assert "415" in readme
