"""Every Dockerfile COPY source checked against the build context Docker would really receive.

`sam build` hands each image function's ``DockerContext`` and ``Dockerfile`` (template Metadata) to
docker-py, which reads the context's ``.dockerignore`` and tars only what its rules let through.
A COPY of a file those rules drop fails the build ("COPY failed: file not found in build context"),
however the file sits in the checkout. So this check computes the context with docker-py's own
``exclude_paths`` (the function its ``build`` uses; no Docker daemon needed) and looks up every
source of every COPY/ADD in it. Run by `make lint` (``python -m fraudops_dev.build_context``).
"""

from __future__ import annotations

import fnmatch
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"


@dataclass(frozen=True)
class Copy:
    dockerfile: str
    line: int
    sources: tuple[str, ...]


def dockerignore_patterns(context: Path) -> list[str]:
    """The patterns as docker-py's ``APIClient.build`` reads them (blank lines and comments dropped)."""
    path = context / ".dockerignore"
    if not path.exists():
        return []
    lines = [line.strip() for line in path.read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def build_context(context: Path, dockerfile: str) -> set[str]:
    """Relative paths (files and directories) docker-py puts in the build context's tar."""
    from docker.utils.build import exclude_paths

    return {path.replace("\\", "/") for path in exclude_paths(str(context), dockerignore_patterns(context), dockerfile)}


def copy_instructions(dockerfile: Path) -> list[Copy]:
    """COPY and ADD instructions from the build context (not ``--from`` another stage), with their
    continuation lines joined and flags (``--chown``, ``--chmod``) dropped."""
    found: list[Copy] = []
    logical, start = "", 0
    for number, raw in enumerate(dockerfile.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not logical and (not stripped or stripped.startswith("#")):
            continue
        if not logical:
            start = number
        if stripped.endswith("\\"):
            logical += stripped[:-1] + " "
            continue
        logical += stripped
        words = shlex.split(logical, posix=True)
        logical = ""
        if not words or words[0].upper() not in {"COPY", "ADD"}:
            continue
        arguments = [w for w in words[1:] if not w.startswith("--")]
        if any(w.startswith("--from") for w in words[1:]) or len(arguments) < 2:
            continue
        found.append(Copy(dockerfile.name, start, tuple(arguments[:-1])))
    return found


def missing_sources(context: Path, dockerfile: Path) -> list[str]:
    """Each COPY source that is not in the context docker-py builds (a directory counts when at
    least one file under it is)."""
    relative_dockerfile = dockerfile.resolve().relative_to(context.resolve()).as_posix()
    included = build_context(context, relative_dockerfile)
    problems = []
    for instruction in copy_instructions(dockerfile):
        for source in instruction.sources:
            wanted = source.strip("/").removeprefix("./") or "."
            if wanted == ".":
                continue
            matches = [p for p in included if p == wanted or p.startswith(wanted + "/") or fnmatch.fnmatch(p, wanted)]
            if not matches:
                reason = "excluded by .dockerignore" if (context / wanted).exists() else "not in the repository"
                problems.append(
                    f"{relative_dockerfile}:{instruction.line}: COPY source {source!r} is not in the build "
                    f"context ({reason})"
                )
    return problems


def image_builds(template_path: Path = TEMPLATE_PATH) -> list[tuple[Path, Path]]:
    """(context, Dockerfile) of every image function, as `sam build` reads them from Metadata."""
    from cfnlint.decode import decode

    template, errors = decode(str(template_path))
    if errors or template is None:
        raise ValueError(f"cannot parse {template_path}: {errors}")
    builds: set[tuple[Path, Path]] = set()
    resources: dict[str, Any] = template["Resources"]
    for resource in resources.values():
        metadata = resource.get("Metadata") or {}
        if resource["Type"] == "AWS::Serverless::Function" and "Dockerfile" in metadata:
            context = (template_path.parent / metadata.get("DockerContext", ".")).resolve()
            builds.add((context, context / metadata["Dockerfile"]))
    return sorted(builds)


def main() -> int:
    builds = image_builds()
    problems = [problem for context, dockerfile in builds for problem in missing_sources(context, dockerfile)]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"build context: every COPY source of {len(builds)} Dockerfiles is in its context (docker-py rules)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
