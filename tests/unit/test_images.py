"""Issue 11: the images copy only the runtime package, and the runtime never imports the tooling."""

from __future__ import annotations

import ast
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from fraudops_dev.image_check import copies as image_copies
from fraudops_dev.image_check import stage

ROOT = Path(__file__).resolve().parents[2]
from fraudops_dev.image_check import IMAGES  # noqa: E402


def copies(dockerfile: Path) -> list[tuple[list[str], str]]:
    return image_copies(dockerfile.parent.name)


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


# Issue 20: the API image has no scikit-learn (nor pandas, scipy, mlflow, the xgboost package); the
# dev venv has them all, so only an import in a fresh interpreter shows what the API path pulls in.
API_PATH_MODULES = (
    "api_function",
    "batch_function",
    "fraudops.api",
    "fraudops.decisions",
    "fraudops.decisions.serving",
)
NOT_IN_THE_API_IMAGE = ("sklearn", "scipy", "pandas", "mlflow", "xgboost")


@pytest.mark.parametrize("module", API_PATH_MODULES)
def test_the_api_path_imports_nothing_the_api_image_lacks(module: str, tmp_path: Path) -> None:
    code = (
        "import sys; sys.path[:0] = sys.argv[1:]\n"
        f"import {module}\n"
        f"print(sorted(m for m in {NOT_IN_THE_API_IMAGE!r} if m in sys.modules))\n"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_DEFAULT_REGION": "us-east-1",
           "FRAUDOPS_API_KEYS": "k", "POWERTOOLS_METRICS_DISABLED": "true"}  # fmt: skip
    handlers = [str(ROOT / "functions" / "api"), str(ROOT / "functions" / "batch")]
    result = subprocess.run(
        [sys.executable, "-c", code, *handlers], capture_output=True, text=True, env=env, timeout=120, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
