"""Builds the Function App's deployment zip: the app code plus its Python dependencies.

Dependencies are installed the way Azure Functions loads them on Linux
(``.python_packages/lib/site-packages`` at the package root) as wheels for the Flex Consumption
workers: CPython 3.11 on x86_64 Linux. Building locally (no remote build) means the package that
was tested is the package that runs, and the deploy does not depend on PyPI being reachable from
Azure at deploy time.

The same app files reach Azure through ``azd deploy``, which zips the project folder minus what
``.funcignore`` excludes (gitignore syntax). :func:`funcignore_files` computes that list so a test
can prove both paths ship exactly :func:`app_files`, and never ``.local/`` or the like.
"""

from __future__ import annotations

import os
import re
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
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


def app_files(root: Path) -> list[Path]:
    """The files of the app itself (no dependencies), as the deploy tool zips them."""
    return list(_app_files(root))


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
        for path in app_files(root):
            bundle.write(path, path.relative_to(root).as_posix())
        for path in sorted(site_packages.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                bundle.write(path, path.relative_to(build_dir).as_posix())
    return archive


# --- .funcignore (what azd and Core Tools leave out) ---------------------------------------------


@dataclass(frozen=True)
class _IgnoreRule:
    pattern: re.Pattern[str]
    negate: bool
    directory_only: bool
    anchored: bool


def _ignore_rule(line: str) -> _IgnoreRule | None:
    """One gitignore line (https://git-scm.com/docs/gitignore, "Pattern format")."""
    line = line.rstrip()
    if not line or line.startswith("#"):
        return None
    negate = line.startswith("!")
    line = line.removeprefix("!")
    directory_only = line.endswith("/")
    line = line.rstrip("/")
    anchored = "/" in line  # a slash at the start or in the middle anchors to the root
    line = line.removeprefix("/")
    regex = ""
    i = 0
    while i < len(line):
        if line.startswith("**/", i):
            regex, i = regex + "(?:.*/)?", i + 3
        elif line.startswith("/**", i) and i + 3 == len(line):
            regex, i = regex + "/.*", i + 3
        elif line[i] == "*":
            regex, i = regex + "[^/]*", i + 1
        elif line[i] == "?":
            regex, i = regex + "[^/]", i + 1
        else:
            regex, i = regex + re.escape(line[i]), i + 1
    return _IgnoreRule(re.compile(f"^{regex}$"), negate, directory_only, anchored)


def _ignored(rules: list[_IgnoreRule], relative: str, is_dir: bool) -> bool:
    ignored = False
    for rule in rules:  # the last matching rule decides
        if rule.directory_only and not is_dir:
            continue
        subject = relative if rule.anchored else relative.rsplit("/", 1)[-1]
        if rule.pattern.match(subject):
            ignored = not rule.negate
    return ignored


def funcignore_files(root: Path, ignore_file: str = ".funcignore") -> list[Path]:
    """The files a zip of ``root`` honouring ``.funcignore`` holds (what ``azd deploy`` uploads).

    As in git, an excluded directory is not entered (nothing below it can be let back in) and
    symbolic links to directories are not followed."""
    path = root / ignore_file
    lines = path.read_text().splitlines() if path.is_file() else []
    rules = [rule for rule in map(_ignore_rule, lines) if rule is not None]
    found: list[Path] = []
    for folder, subfolders, files in os.walk(root):
        base = Path(folder).relative_to(root)
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not _ignored(rules, (base / name).as_posix(), is_dir=True)
            and not (Path(folder) / name).is_symlink()
        )
        found += [
            Path(folder) / name
            for name in sorted(files)
            if not _ignored(rules, (base / name).as_posix(), is_dir=False)
        ]
    return found
