"""Issue 28: the runtime package's top level is the architecture. Each family is a subpackage whose
``__init__`` says what it is for; families import one way (the order below, which ``fraudops/__init__.py``
and docs/architecture.md give); no module imports another module's private names."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "layers" / "runtime"
PACKAGE = RUNTIME / "fraudops"
# A family may import the families before it, never one after it.
FAMILY_ORDER = (
    "core",
    "aggregates",
    "model",
    "store",
    "monitoring",
    "decisions",
    "serving",
    "lake",
    "training",
    "production",
    "spark_training",
    "stages",
    "api",
    "batch",
)


@dataclass(frozen=True)
class Imported:
    module: str  # the importing module
    target: str  # the module imported from
    names: tuple[str, ...]  # the names imported (empty for ``import x``)
    line: int


def module_name(path: Path, root: Path = RUNTIME) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, root: Path = RUNTIME) -> list[Imported]:
    """Every fraudops import in a file, wherever it sits (module level, functions, TYPE_CHECKING)."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            target = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*kept, target]).strip(".")
            if target.split(".")[0] == "fraudops":
                found.append(Imported(module, target, tuple(a.name for a in node.names), node.lineno))
        elif isinstance(node, ast.Import):
            found += [Imported(module, a.name, (), node.lineno) for a in node.names if a.name.startswith("fraudops.")]
    return found


def family(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def problems(root: Path = RUNTIME, order: tuple[str, ...] = FAMILY_ORDER) -> list[str]:
    found = []
    for path in sorted((root / "fraudops").rglob("*.py")):
        for imported in imports_of(path, root):
            own, other = family(imported.module), family(imported.target)
            where = f"{imported.module}:{imported.line}"
            if (
                other
                and own != other
                and (other not in order or own not in order or order.index(other) > order.index(own))
            ):
                found.append(f"{where} imports {imported.target}: {own} may not import {other} (order: {order})")
            if imported.target == "fraudops" and imported.names:
                found.append(f"{where} imports {imported.names} from the top package: name the family")
            private = [n for n in imported.names if n.startswith("_") and not n.startswith("__")]
            if private and imported.target != imported.module:
                found.append(f"{where} imports private {private} from {imported.target}")
    return found


def test_the_top_level_is_one_subpackage_per_family_in_the_declared_order() -> None:
    entries = sorted(p.name for p in PACKAGE.iterdir() if p.name != "__pycache__")
    assert entries == sorted(["__init__.py", *FAMILY_ORDER]), "a flat module or an undeclared family at the top"
    top = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text())) or ""
    listed = [line.split("``")[1] for line in top.splitlines() if line.startswith("- ``")]
    assert listed == list(FAMILY_ORDER), "fraudops/__init__.py lists the families in import order"


@pytest.mark.parametrize("name", FAMILY_ORDER)
def test_every_family_says_what_it_is_for(name: str) -> None:
    docstring = ast.get_docstring(ast.parse((PACKAGE / name / "__init__.py").read_text())) or ""
    assert len(docstring) > 80, f"fraudops/{name}/__init__.py needs a docstring saying what it is for"
    modules = sorted(p.stem for p in (PACKAGE / name).glob("*.py") if p.stem not in {"__init__", "__main__"})
    unnamed = [m for m in modules if f"``{m}``" not in docstring]
    assert unnamed == [], f"fraudops/{name}/__init__.py does not describe {unnamed}"


def test_families_import_one_way_and_no_module_imports_private_names() -> None:
    assert problems() == []


def test_the_check_finds_an_upward_import_and_a_private_name(tmp_path: Path) -> None:
    core, serving = tmp_path / "fraudops" / "core", tmp_path / "fraudops" / "serving"
    core.mkdir(parents=True)
    serving.mkdir()
    (tmp_path / "fraudops" / "__init__.py").write_text("")
    (core / "config.py").write_text("def f():\n    from fraudops.serving.decide import decide_rows\n")
    (serving / "decide.py").write_text("from ..core.config import _hidden\nfrom fraudops.core import config\n")
    found = problems(tmp_path, ("core", "serving"))
    assert len(found) == 2, found
    assert "fraudops.core.config:2 imports fraudops.serving.decide: core may not import serving" in found[0]
    assert "fraudops.serving.decide:1 imports private ['_hidden'] from fraudops.core.config" in found[1]
