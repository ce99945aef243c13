"""Issue 11: the images copy only the runtime package, and the runtime never imports the tooling."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGES = {"api": ["api_function"], "train": ["train_function", "promote_function", "monitor_function"]}


def copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY of project files (the requirements staging excluded)."""
    result = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY ") and "/tmp/build" not in line:
            *sources, destination = line.split()[1:]
            result.append((sources, destination))
    return result


def stage(image: str, into: Path) -> Path:
    """Lay out ${LAMBDA_TASK_ROOT} as the Dockerfile does."""
    for sources, destination in copies(ROOT / "functions" / image / "Dockerfile"):
        target = into / destination.replace("${LAMBDA_TASK_ROOT}", "").strip("/")
        for source in sources:
            path = ROOT / source
            if path.is_dir():
                shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target / path.name)
    return into


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_images_copy_only_the_runtime_and_their_handlers(image: str) -> None:
    sources = [source for sources, _ in copies(ROOT / "functions" / image / "Dockerfile") for source in sources]
    assert "layers/runtime/fraudops" in sources
    assert not [s for s in sources if "devtools" in s or s.startswith("tests")]


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_handlers_import_from_the_image_layout_without_the_tooling(image: str, tmp_path: Path) -> None:
    task_root = stage(image, tmp_path / "task")
    site = sysconfig.get_paths()["purelib"]
    modules = ", ".join(IMAGES[image])
    code = (
        "import sys; sys.path[:0] = [sys.argv[1], sys.argv[2]]\n"
        f"import {modules}\n"
        "import fraudops; assert fraudops.__file__.startswith(sys.argv[1]), fraudops.__file__\n"
        "assert not any(m.startswith('fraudops_dev') for m in sys.modules)\n"
        "try:\n    import fraudops_dev\nexcept ModuleNotFoundError:\n    print('no tooling')\n"
    )
    # -S: no site module, so the editable install's path hooks (which would find the tooling) never load
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1",
           "FRAUDOPS_API_KEYS": "k", "POWERTOOLS_METRICS_DISABLED": "true"}  # fmt: skip
    result = subprocess.run(
        [sys.executable, "-S", "-c", code, str(task_root), site], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("no tooling")


def test_the_runtime_never_imports_the_tooling_or_tests() -> None:
    offenders = []
    for path in (ROOT / "layers" / "runtime" / "fraudops").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in {"fraudops_dev", "tests"}]
    assert offenders == []


def test_promotion_does_not_import_training() -> None:
    for name in ("promotion.py", "stages/promote.py"):
        tree = ast.parse((ROOT / "layers" / "runtime" / "fraudops" / name).read_text())
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "fraudops.training" not in modules and "fraudops.stages.train" not in modules
