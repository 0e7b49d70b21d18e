"""The floor plan: wings with faces, jobs/ on the engine's faces only, small modules."""

from __future__ import annotations

import ast
import collections
import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WINGS = ("http", "inputs", "outputs", "run", "store")
FACES = {"batch", *(f"batch.{wing}" for wing in WINGS)}


def modules(top: str) -> Iterator[Path]:
    yield from sorted((ROOT / top).rglob("*.py"))


def engine_imports(path: Path) -> Iterator[tuple[int, str]]:
    """Every module of the engine a file imports, with its line."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for name in names:
            if name == "batch" or name.startswith("batch."):
                yield node.lineno, name


def test_jobs_import_the_engine_only_from_its_faces() -> None:
    private = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in modules("jobs")
        for line, name in engine_imports(path)
        if name not in FACES
    ]
    assert private == []


def test_a_wing_imports_another_wing_only_from_its_face() -> None:
    crossing = []
    for path in modules("batch"):
        parts = path.relative_to(ROOT).parts
        own = parts[1] if len(parts) > 2 else None
        for line, name in engine_imports(path):
            wing = name.split(".")[1] if name.count(".") >= 2 else None
            if wing is not None and wing != own:
                crossing.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    assert crossing == []


def test_the_engine_never_imports_the_job() -> None:
    found = [
        str(path.relative_to(ROOT))
        for path in modules("batch")
        if "jobs" in {n.split(".")[0] for _, n in _imports(path)}
    ]
    assert found == []


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)


@pytest.mark.parametrize("face", sorted(FACES))
def test_every_name_a_face_promises_is_there(face: str) -> None:
    module = importlib.import_module(face)
    missing = [name for name in module.__all__ if getattr(module, name, None) is None]
    assert module.__all__
    assert missing == []


def test_help_imports_none_of_the_engine() -> None:
    script = "import sys; from jobs.cli.main import cli; print(sorted(m for m in sys.modules if m.split('.')[0] == 'batch'))"  # noqa: E501
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert run.stdout.strip() == "[]"


def test_the_engine_sets_no_interpreter_wide_state() -> None:
    """gc.freeze, the GIL's switch interval and import hooks belong to the program's entry."""
    global_calls = {("gc", "freeze"), ("sys", "setswitchinterval"), ("sys", "meta_path")}
    found = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.value.id}.{node.attr}"
        for path in modules("batch")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and (node.value.id, node.attr) in global_calls
    ]
    assert found == []


@pytest.mark.parametrize("top", ["batch", "jobs"])
def test_folders_stay_small_and_named_apart(top: str) -> None:
    for folder in [ROOT / top, *(p for p in (ROOT / top).rglob("*") if p.is_dir())]:
        names = [p.stem for p in folder.glob("*.py") if p.stem != "__init__"]
        if not names:
            continue
        assert len(names) <= 10, f"{folder.relative_to(ROOT)} holds {len(names)} modules"
        prefixes = collections.Counter(name.split("_")[0] for name in names)
        shared = {prefix: n for prefix, n in prefixes.items() if n >= 3}
        assert shared == {}, f"{folder.relative_to(ROOT)}: {shared}"


@pytest.mark.parametrize("top", ["batch", "jobs"])
def test_no_module_is_over_350_lines(top: str) -> None:
    long = {
        str(path.relative_to(ROOT)): n
        for path in modules(top)
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > 350
    }
    assert long == {}
