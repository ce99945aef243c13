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


@pytest.mark.slow
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
    for name in ("production/promotion.py", "stages/promote.py"):
        tree = ast.parse((ROOT / "layers" / "runtime" / "fraudops" / name).read_text())
        modules = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        training = {"fraudops.training.fit", "fraudops.training.tracking", "fraudops.stages.train"}
        assert not modules & training, modules & training


# Issue 20: the API image has no scikit-learn (nor pandas, scipy, mlflow, the xgboost package); the
# dev venv has them all, so only an import in a fresh interpreter shows what the API path pulls in.
API_PATH_MODULES = (
    "api_function",
    "batch_function",
    "fraudops.api",
    "fraudops.decisions",
    "fraudops.serving.decide",
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


# Issue 27 item 8: laptop tooling lives in devtools/, because the images copy the whole runtime package.
# A runtime module that no AWS entry point reaches is laptop code shipped for nothing, unless it is
# loaded by another way than an import statement (listed here with that way).
AWS_ENTRY_POINTS = (*sorted((ROOT / "functions").glob("*/*_function.py")), ROOT / "infra" / "emr" / "spark_train.py")
NOT_REACHED_BY_AN_IMPORT = {
    "fraudops.model.pyfunc_entry": "MLflow runs it by file path (training/tracking.py, models from code)",
    "fraudops.model.pyfunc": "imported by pyfunc_entry when MLflow loads a registered model",
    "fraudops.api.redact": "uvicorn's log filter of the local API, named by string in fraudops_dev.cli",
}


def _runtime_modules() -> dict[str, Path]:
    runtime = ROOT / "layers" / "runtime"
    modules = {}
    for path in (runtime / "fraudops").rglob("*.py"):
        parts = list(path.relative_to(runtime).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported_names(path: Path, package: str) -> set[str]:
    """Every module name an import statement in ``path`` may load (``from a import b``: a and a.b)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*kept, base]).strip(".")
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def reached_from(entry_points: tuple[Path, ...], modules: dict[str, Path]) -> set[str]:
    """The runtime modules the entry points load, following imports (and each module's parents)."""
    seen: set[str] = set()
    todo = [name for entry in entry_points for name in _imported_names(entry, "")]
    while todo:
        parts = todo.pop().split(".")
        for end in range(1, len(parts) + 1):
            name = ".".join(parts[:end])
            if name in modules and name not in seen:
                seen.add(name)
                package = name if modules[name].name == "__init__.py" else name.rpartition(".")[0]
                todo += _imported_names(modules[name], package)
    return seen


def test_every_runtime_module_is_reached_from_an_aws_entry_point() -> None:
    modules = _runtime_modules()
    assert len(AWS_ENTRY_POINTS) >= 7 and "fraudops.api" in reached_from(AWS_ENTRY_POINTS, modules)
    laptop_only = sorted(set(modules) - reached_from(AWS_ENTRY_POINTS, modules) - set(NOT_REACHED_BY_AN_IMPORT))
    assert laptop_only == [], f"move laptop-only code to devtools/fraudops_dev/: {laptop_only}"
    assert not set(NOT_REACHED_BY_AN_IMPORT) - set(modules), "a listed module is gone: drop it from the list"


def test_the_reachability_check_finds_a_module_only_the_tooling_imports(tmp_path: Path) -> None:
    entry = tmp_path / "x_function.py"
    entry.write_text("from fraudops.stages.train import run_training\n")
    modules = _runtime_modules()
    reached = reached_from((entry,), modules)
    assert {"fraudops", "fraudops.stages.train", "fraudops.training.fit", "fraudops.core.config"} <= reached
    assert "fraudops.api" not in reached
