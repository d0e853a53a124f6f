"""Builds the Function App's deployment zip: the app code plus its Python dependencies.

Dependencies are installed the way Azure Functions loads them on Linux
(``.python_packages/lib/site-packages`` at the package root) as wheels for the Flex Consumption
workers: CPython 3.11 on x86_64 Linux. Building locally (no remote build) means the package that
was tested is the package that runs, and the deploy does not depend on PyPI being reachable from
Azure at deploy time.
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

from .azcli import AzureCli

#: Python version of functionAppConfig.runtime in infra/modules/functionapp.bicep.
PYTHON_VERSION = "3.11"

#: Wheel platforms the Functions Python 3.11 image runs. pip does not widen manylinux_2_x tags by
#: itself, so each glibc baseline is named; none newer than 2.28, which every supported image meets.
PLATFORMS = ("manylinux2014_x86_64", "manylinux_2_17_x86_64", "manylinux_2_28_x86_64")

#: What goes into the package, relative to the repository root. Everything else (tests, infra,
#: docs, virtual environments) stays out.
APP_FILES = ("function_app.py", "host.json", "requirements.txt")
APP_PACKAGES = ("scim_core", "graph_enrich")

SITE_PACKAGES = Path(".python_packages/lib/site-packages")


def pip_install_command(requirements: Path, target: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--requirement",
        str(requirements),
        "--target",
        str(target),
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "--python-version",
        PYTHON_VERSION,
        "--implementation",
        "cp",
        "--only-binary=:all:",
        "--upgrade",
        "--quiet",
    ]


def _app_files(root: Path) -> Iterator[Path]:
    for name in APP_FILES:
        path = root / name
        if not path.is_file():
            raise SystemExit(f"{path} is missing: is this the repository root?")
        yield path
    for package in APP_PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                yield path


def build(az: AzureCli, root: Path, build_dir: Path, name: str) -> Path:
    """Install the dependencies into ``build_dir`` and zip them with the app code."""
    site_packages = build_dir / SITE_PACKAGES
    az.run_external(pip_install_command(root / "requirements.txt", site_packages))
    archive = build_dir / f"{name}.zip"
    az.echo(f"+ zip {', '.join(APP_FILES + APP_PACKAGES)} and {SITE_PACKAGES} into {archive}")
    if az.dry_run:
        return archive
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for path in _app_files(root):
            bundle.write(path, path.relative_to(root).as_posix())
        for path in sorted(site_packages.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                bundle.write(path, path.relative_to(build_dir).as_posix())
    return archive
