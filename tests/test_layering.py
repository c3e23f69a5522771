"""Strict layers, and a package list that matches the tree."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ABOVE_THE_KERNEL = ["supervision", "runtime", "rdd", "shuffle"]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_packages_above_the_kernel_use_only_its_public_names():
    offenders = []
    for package in ABOVE_THE_KERNEL:
        for path in (ROOT / package).rglob("*.py"):
            for name in imported_modules(path):
                if name.startswith("sparklet.actors._"):
                    offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, offenders


def test_nothing_imports_by_the_bare_directory_names():
    bare = {"actors", "runtime", "rdd", "supervision", "shuffle"}
    offenders = []
    for path in ROOT.rglob("*.py"):
        if ".venv" in path.parts:
            continue
        for name in imported_modules(path):
            if name.split(".")[0] in bare:
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not offenders, offenders


def test_pyproject_lists_every_package_directory():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["package-dir"] == {"sparklet": "."}
    listed = set(config["packages"])
    on_disk = {"sparklet"} | {
        "sparklet." + ".".join(p.parent.relative_to(ROOT).parts)
        for p in ROOT.glob("*/**/__init__.py")
        if p.parent.relative_to(ROOT).parts[0] not in ("tests", "examples", "benchmarks", ".venv")
    }
    assert listed == on_disk
