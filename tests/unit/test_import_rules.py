"""The dependency direction of DESIGN.md, enforced: ``function_app -> scim_core <- graph_enrich``;
inside scim_core only the Table storage adapter (table.py, table_batch.py, table_errors.py and
its HTTP transport, transport.py) imports ``azure.*``; nothing in scim_core imports
``azure.functions`` or ``msgraph``; and importing ``function_app`` (the HTTP cold-start path)
loads neither msgraph nor azure.identity."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = sorted((ROOT / "scim_core").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", CORE, ids=[p.name for p in CORE])
def test_scim_core_stays_framework_free(path: Path) -> None:
    mods = imported_modules(path)
    assert not {
        m
        for m in mods
        if m.startswith(("azure.functions", "msgraph", "function_app", "graph_enrich", "devhost"))
    }
    if path.name not in ("table.py", "table_batch.py", "table_errors.py", "transport.py"):
        assert not {m for m in mods if m.startswith("azure")}, "only the storage adapter may"


def test_function_app_cold_path_is_light() -> None:
    """Importing function_app must not import the Graph SDK nor azure.identity (~1 s)."""
    code = (
        "import sys, function_app; "
        "bad = [m for m in sys.modules if m.startswith(('msgraph', 'azure.identity', 'kiota'))];"
        "print(bad); raise SystemExit(1 if bad else 0)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
