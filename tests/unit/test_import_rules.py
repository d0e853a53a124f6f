"""The dependency direction of DESIGN.md, enforced.

- ``function_app -> scim_core <- graph_enrich``; nothing in scim_core imports ``azure.functions``,
  ``msgraph``, ``function_app``, ``graph_enrich`` or ``devhost``.
- Inside scim_core only the storage package (``scim_core/store/``) imports ``azure.*``; the
  protocol modules (and graph_enrich) reach storage through the :class:`Store` protocol
  (``scim_core.store`` / ``scim_core.store.protocol``) only, and the wiring picks a backend.
- No import cycles among scim_core's modules, counting imports inside functions too (a lazy
  import is still a dependency).
- Importing ``function_app`` (the HTTP cold-start path) loads neither msgraph nor azure.identity.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = sorted((ROOT / "scim_core").rglob("*.py"))
STORE = ROOT / "scim_core" / "store"
ENRICH = sorted((ROOT / "graph_enrich").rglob("*.py"))
#: What code outside the storage package may import of it: the protocol, not a backend.
STORE_SEAM = {"scim_core.store", "scim_core.store.protocol"}
#: The one place that chooses a backend (and the package's lazy MemoryStore export).
BACKEND_CHOOSERS = {"wiring.py", "__init__.py"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from scim_core import discovery`` depends on the module scim_core.discovery
            found = {f"{node.module}.{a.name}" for a in node.names}
            modules = {m for m in found if is_module(m)}
            names.update(modules if modules == found else {node.module, *modules})
    return names


def is_module(name: str) -> bool:
    base = ROOT.joinpath(*name.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", CORE, ids=[rel(p) for p in CORE])
def test_scim_core_stays_framework_free(path: Path) -> None:
    mods = imported_modules(path)
    assert not {
        m
        for m in mods
        if m.startswith(("azure.functions", "msgraph", "function_app", "graph_enrich", "devhost"))
    }
    if STORE not in path.parents:
        assert not {m for m in mods if m.startswith("azure")}, "only scim_core/store/ may"


@pytest.mark.parametrize(
    "path",
    [p for p in CORE if STORE not in p.parents] + ENRICH,
    ids=[rel(p) for p in CORE if STORE not in p.parents] + [rel(p) for p in ENRICH],
)
def test_storage_is_reached_through_the_protocol(path: Path) -> None:
    backends = {
        m
        for m in imported_modules(path)
        if m.startswith("scim_core.store.") and m not in STORE_SEAM
    }
    if path.parent.name == "scim_core" and path.name in BACKEND_CHOOSERS:
        backends -= {"scim_core.store.table", "scim_core.store.memory"}
    assert not backends, f"{rel(path)} imports a storage backend: {sorted(backends)}"


def test_scim_core_has_no_import_cycles() -> None:
    modules = {module_name(p): p for p in CORE}
    graph = {
        name: {m for m in imported_modules(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


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


@pytest.mark.parametrize("path", CORE + ENRICH, ids=[rel(p) for p in CORE + ENRICH])
def test_no_module_is_over_500_lines(path: Path) -> None:
    """The house size (STYLE.md): one concept a module, ~400 lines, none over 500."""
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= 500, f"{rel(path)} has {lines} lines: split it along a real seam"
