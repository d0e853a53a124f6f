"""The deployment zip holds what the app imports, built for the runtime the Bicep declares."""

from __future__ import annotations

import ast
from pathlib import Path

from infra import package

from .templates import ROOT


def _imported_top_level_names(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_local_package_the_app_imports_is_packaged() -> None:
    """A local package imported by the app but missing from the zip fails only in Azure."""
    sources = [ROOT / "function_app.py"] + [
        path
        for name in package.APP_PACKAGES
        if (ROOT / name).is_dir()
        for path in (ROOT / name).rglob("*.py")
    ]
    imported = set().union(*(_imported_top_level_names(path) for path in sources))
    local = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    assert (imported & local) - set(package.APP_PACKAGES) == set()


def test_app_files_exist() -> None:
    for name in package.APP_FILES:
        assert (ROOT / name).is_file(), name
