"""The deployment zip holds what the app imports, built for the runtime the Bicep declares."""

from __future__ import annotations

import ast
import io
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from infra import package
from infra.azcli import AzureCli

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


# --- what reaches Azure: the deploy tool's zip and azd's (.funcignore) agree ------------------

#: Never in a deployment: local Azurite data and the local bearer-token file, dependencies of
#: the dev tooling, tests, benchmarks, infrastructure, docs, caches and virtual environments.
FORBIDDEN_PREFIXES = (
    ".local/", "node_modules/", "tests/", "bench/", "infra/", "docs/", "devhost/", ".venv",
    ".git", ".github/", ".ci/", ".pytest_cache/", ".mypy_cache/", ".ruff_cache/", ".hypothesis/",
    "local.settings",
)  # fmt: skip

#: Decoys written into a copy of the app, each of which a careless zip would pick up.
DECOYS = (
    ".local/bearer-token",
    ".local/azurite/__azurite_db_table__.json",
    "node_modules/azurite/package.json",
    "tests/test_something.py",
    "bench/run.py",
    "infra/main.bicep",
    "docs/deploy.md",
    ".venv/lib/python3.11/site-packages/x.py",
    ".pytest_cache/v/cache/lastfailed",
    "local.settings.json",
    "scim_core/__pycache__/auth.cpython-311.pyc",
    "graph_enrich/stray.pyc",
    "README.md",
)


def _relative(root: Path, paths: list[Path]) -> set[str]:
    return {path.relative_to(root).as_posix() for path in paths}


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    """The app's files plus decoys, in a scratch directory."""
    for name in (*package.APP_FILES, ".funcignore"):
        shutil.copy(ROOT / name, tmp_path / name)
    for name in package.APP_PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    for decoy in DECOYS:
        (tmp_path / decoy).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / decoy).write_text("decoy")
    return tmp_path


def _expected(root: Path) -> set[str]:
    """Exactly what the app needs: function_app.py, host.json, requirements.txt and the
    sources and data files of its own packages."""
    names = set(package.APP_FILES)
    for name in package.APP_PACKAGES:
        names |= {
            path.relative_to(root).as_posix()
            for path in (root / name).rglob("*")
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
        }
    return names


def test_the_repository_ships_the_same_files_both_ways() -> None:
    """azd (honouring .funcignore) and the deploy tool upload the same app files."""
    assert _relative(ROOT, package.funcignore_files(ROOT)) == _relative(
        ROOT, package.app_files(ROOT)
    )


@pytest.mark.parametrize("path", ["deploy-tool", "azd"])
def test_a_package_holds_exactly_the_app(app_copy: Path, path: str) -> None:
    files = (
        package.app_files(app_copy) if path == "deploy-tool" else package.funcignore_files(app_copy)
    )
    names = _relative(app_copy, files)
    assert names == _expected(app_copy)
    assert not [name for name in names if name.startswith(FORBIDDEN_PREFIXES)]


def test_without_funcignore_azd_would_ship_the_decoys(app_copy: Path) -> None:
    """The check above is not vacuous: with no .funcignore, .local/ and the rest go up."""
    (app_copy / ".funcignore").unlink()
    names = _relative(app_copy, package.funcignore_files(app_copy))
    assert {
        ".local/bearer-token",
        "node_modules/azurite/package.json",
        "tests/test_something.py",
    } <= names


def test_the_built_zip_holds_the_app_and_its_dependencies_only(
    app_copy: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The deploy tool's real zip (pip replaced by a stand-in that installs one package)."""
    build_dir = tmp_path_factory.mktemp("build")

    def executor(argv: Sequence[str]) -> tuple[int, str, str]:
        target = Path(argv[list(argv).index("--target") + 1])
        (target / "azure" / "data" / "tables").mkdir(parents=True)
        (target / "azure" / "data" / "tables" / "__init__.py").write_text("")
        return 0, "", ""

    az = AzureCli(dry_run=False, out=io.StringIO(), executor=executor)
    archive = package.build(az, app_copy, build_dir, "scim-test")
    with zipfile.ZipFile(archive) as bundle:
        names = set(bundle.namelist())
    dependency = ".python_packages/lib/site-packages/azure/data/tables/__init__.py"
    assert names == _expected(app_copy) | {dependency}
    assert not [name for name in names if name.startswith(FORBIDDEN_PREFIXES)]


@pytest.mark.parametrize(
    ("line", "path", "is_dir", "ignored"),
    [
        ("/*", "bench", True, True),
        ("/*", "scim_core/auth.py", False, False),
        ("__pycache__/", "scim_core/__pycache__", True, True),
        ("__pycache__/", "__pycache__", False, False),
        ("*.pyc", "a/b/c.pyc", False, True),
        ("docs/**", "docs/a/b.md", False, True),
        ("**/secret", "a/b/secret", False, True),
        ("?.txt", "a.txt", False, True),
    ],
    ids=[
        "anchored-star", "anchored-is-top-level-only", "dir-only-any-depth",
        "dir-only-skips-files", "unanchored-basename", "double-star-suffix",
        "double-star-prefix", "question-mark",
    ],
)  # fmt: skip
def test_gitignore_pattern_semantics(line: str, path: str, is_dir: bool, ignored: bool) -> None:
    """The subset of gitignore syntax (git-scm.com/docs/gitignore) .funcignore relies on."""
    rule = package._ignore_rule(line)
    assert rule is not None
    assert package._ignored([rule], path, is_dir) is ignored
