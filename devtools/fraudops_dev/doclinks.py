"""`make lint`'s link check of README.md and docs/: every relative link and anchor resolves, and every
repository path named in a code span exists (a doc that names a moved file sends readers nowhere).

External URLs are not fetched (no network here, and a flaky site must not fail lint); a link to this
project's own GitHub address is refused, since the repository is not published under a fixed one.

    python -m fraudops_dev.doclinks README.md docs
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
_FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)
_LINK = re.compile(r"(?<!\!)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_IMAGE = re.compile(r"!\[[^\]]*\]\(\s*([^)\s]+)\s*\)")
_CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
# A code span is taken as a repository path when it starts with one of the repository's folders.
_REPO_FOLDERS = ("layers/", "functions/", "devtools/", "tests/", "infra/", "benchmarks/", "docs/", ".ci/", "events/")
_OWN_GITHUB = re.compile(r"https?://github\.com/fraudops/fraudops\b")


@dataclass(frozen=True)
class Problem:
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown file offers (GitHub numbers repeated headings -1, -2, ...)."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for heading in _HEADING.findall(_FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        count = seen.get(base, 0)
        found.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return found


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _blank_fences(text: str) -> str:
    """Fenced code blocks replaced by as many newlines (line numbers stay right, links inside ignored)."""
    return _FENCE.sub(lambda match: "\n" * match.group(0).count("\n"), text)


def check_file(path: Path, root: Path = REPO_ROOT) -> list[Problem]:
    text = _blank_fences(path.read_text(encoding="utf-8"))
    problems: list[Problem] = []
    for pattern in (_LINK, _IMAGE):
        for match in pattern.finditer(text):
            problem = _check_target(path, match.group(1), root)
            if problem:
                problems.append(Problem(path, _line_of(text, match.start()), problem))
    for match in _CODE_SPAN.finditer(text):
        span = match.group(1).strip()
        if not span.startswith(_REPO_FOLDERS) or re.search(r"[\s<>*{}…$]|\.\.\.", span):
            continue
        name = span.split("::")[0].split("#")[0].rstrip("/.,:")
        if not (root / name).exists():
            problems.append(Problem(path, _line_of(text, match.start()), f"`{span}` names a path that does not exist"))
    return problems


def _check_target(source: Path, target: str, root: Path) -> str | None:
    if _OWN_GITHUB.match(target):
        return f"{target}: this project has no fixed public address; link to the file relatively"
    if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http(s), mailto: not fetched
        return None
    location, _, fragment = target.partition("#")
    file = (source.parent / location).resolve() if location else source.resolve()
    if not file.exists():
        return f"link to {target}: {location} does not exist"
    try:
        file.relative_to(root.resolve())
    except ValueError:
        return f"link to {target}: leaves the repository"
    if fragment and file.suffix == ".md" and fragment not in anchors(file):
        return f"link to {target}: {file.name} has no heading with the anchor #{fragment}"
    return None


def markdown_files(paths: Iterable[str], root: Path = REPO_ROOT) -> list[Path]:
    files: list[Path] = []
    for name in paths:
        path = (root / name) if not Path(name).is_absolute() else Path(name)
        files += sorted(path.rglob("*.md")) if path.is_dir() else [path]
    return files


def main(argv: Sequence[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or ["README.md", "docs"]
    problems = [problem for path in markdown_files(names) for problem in check_file(path)]
    for problem in problems:
        print(problem, file=sys.stderr)
    checked = len(markdown_files(names))
    print(f"doclinks: {checked} files, {len(problems)} broken links or paths", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
