"""Issue 17, items 2 and 11: every Dockerfile COPY source is in the build context docker-py really
sends (its own .dockerignore rules, not files we stage ourselves), and every base image is pinned."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fraudops_dev.build_context import image_builds, missing_sources

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted({dockerfile for _, dockerfile in image_builds()})


def test_every_image_function_builds_from_a_dockerfile_in_the_repo() -> None:
    assert [d.relative_to(ROOT).as_posix() for d in DOCKERFILES] == [
        "functions/api/Dockerfile",
        "functions/train/Dockerfile",
    ]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.parent.name)
def test_every_copy_source_is_in_the_real_build_context(dockerfile: Path) -> None:
    assert missing_sources(ROOT, dockerfile) == []


def test_a_source_the_dockerignore_drops_is_reported(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "kept.py").write_text("")
    (tmp_path / "app" / "dropped.py").write_text("")
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "sub" / "m.py").write_text("")
    (tmp_path / ".dockerignore").write_text("# only what we copy\n*\n!app/kept.py\n!pkg/\n")
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text(
        "FROM scratch\nCOPY app/kept.py \\\n     app/dropped.py /x/\n"
        "COPY --chown=1:1 pkg /p\nCOPY --from=build /a /b\nCOPY absent.txt /y/\n"
    )
    problems = missing_sources(tmp_path, dockerfile)
    assert len(problems) == 2, problems
    assert "Dockerfile:2: COPY source 'app/dropped.py'" in problems[0] and "excluded by .dockerignore" in problems[0]
    assert "'absent.txt'" in problems[1] and "not in the repository" in problems[1]


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda d: d.parent.name)
def test_every_base_image_is_pinned_by_digest_with_its_tag(dockerfile: Path) -> None:
    """`sam build` for dev and for prod must start from the same bytes: a tag moves, a digest does not."""
    froms = [line.split()[1:] for line in dockerfile.read_text().splitlines() if line.upper().startswith("FROM ")]
    assert froms
    for words in froms:
        image = next(w for w in words if not w.startswith("--"))
        assert re.fullmatch(r"[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image), f"{dockerfile}: {image} is not pinned"
