"""Documentation that drifts is worse than none: docs/configuration.md lists every setting, the README
names the first-day ones and links the rest, and every CLI command and make target is documented."""

from __future__ import annotations

import re
from pathlib import Path

from fraudops.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION = ROOT / "docs" / "configuration.md"
LOCAL = ROOT / "docs" / "local.md"


def table_rows(text: str) -> dict[str, list[str]]:
    """A Markdown table's rows keyed by their first cell's `FRAUDOPS_*` name (repeats kept, to be caught)."""
    rows: dict[str, list[str]] = {}
    for line in text.splitlines():
        found = re.match(r"^\| `(FRAUDOPS_[A-Z0-9_]+)` \|(.*)\|\s*$", line)
        if found:
            rows.setdefault(found.group(1), []).append(found.group(2))
    return rows


def test_the_configuration_page_documents_every_setting_once() -> None:
    rows = table_rows(CONFIGURATION.read_text())
    settings = [f"FRAUDOPS_{name.upper()}" for name in Settings.model_fields]
    assert [name for name in settings if name not in rows] == []
    assert {name: len(found) for name, found in rows.items() if len(found) > 1} == {}
    assert sorted(set(rows) - set(settings)) == []  # no row for a setting that no longer exists


def test_the_readme_names_the_first_day_settings_and_links_the_table() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Configuration") :].split("\n## ", 1)[0]
    assert "(docs/configuration.md)" in section
    shown = table_rows(section)
    full = table_rows(CONFIGURATION.read_text())
    assert 5 <= len(shown) <= 8, sorted(shown)
    for name, (row,) in shown.items():
        assert name in full, name
        # The README may shorten a default's note ("unset (`<state_dir>/lake`)"), never change it.
        default, documented = row.split("|")[0].strip(), full[name][0].split("|")[0].strip()
        assert documented.startswith(default.removesuffix(")")), (name, default, documented)


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


def test_the_docs_list_every_cli_command() -> None:
    """The listing moved from the README to docs/local.md ("The CLI"); the README links it."""
    from fraudops_dev.cli import build_parser

    page = LOCAL.read_text()
    commands = dict(build_parser()._subparsers._group_actions[0].choices or {})  # type: ignore[union-attr]
    start = page.index("The CLI behind the Makefile is `fraudops`")
    listing = page[start : page.index("A problem", start)]
    missing = [name for name in commands if name != "retrain-local" and f"`{name}`" not in listing]
    assert missing == []
    readme = (ROOT / "README.md").read_text()
    assert "`fraudops` CLI" in readme and "(docs/local.md)" in readme


def test_every_make_target_is_documented() -> None:
    """Each target with a `##` help line is named as `make <target>` in the README or docs/local.md's
    table, and that table says what the Makefile's help says."""
    targets = re.findall(r"^([a-z-]+):.*## (.+)$", (ROOT / "Makefile").read_text(), re.M)
    assert len(targets) > 20
    documented = (ROOT / "README.md").read_text() + LOCAL.read_text()
    assert [name for name, _ in targets if not re.search(rf"`make {re.escape(name)}(`| )", documented)] == []
    rows = dict(re.findall(r"^\| `make ([a-z-]+)` \| (.+) \|$", LOCAL.read_text(), re.M))
    assert [name for name, _ in targets if name not in rows] == []
    # The table's text is the help's, with its `FILE=...`/`Q=...` put in code spans.
    assert {name: help_ for name, help_ in targets if rows[name].replace("`", "") != help_.replace("`", "")} == {}


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
