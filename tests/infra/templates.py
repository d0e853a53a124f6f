"""Reading the Bicep templates for the infrastructure tests.

pycep-parser turns a .bicep file into JSON-like dicts: ``parameters``, ``variables``, ``resources``,
``modules``, ``outputs``, each keyed by symbolic name. Identifiers and string literals both come
back as plain strings, which is enough for the structural checks here. ``.bicepparam`` files are
not Bicep proper; :func:`read_bicepparam` reads their ``using`` line and ``param`` assignments.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"
FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"
GRAPH_PERMISSIONS = INFRA / "graph-permissions.bicep"

_COMMENT = re.compile(r"(^|\s)//.*$", re.MULTILINE)


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


def bicepparam_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicepparam"))


@functools.cache
def _parser() -> BicepParser:
    return BicepParser()


@functools.cache
def parse(path: Path) -> dict[str, Any]:
    return _parser().parse(file_path=path)


def code_without_comments(path: Path) -> str:
    return _COMMENT.sub(r"\1", path.read_text())


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: r for name, r in template.get("resources", {}).items() if r["type"] == resource_type
    }


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's properties, looking through `if (...)` conditions and `for` loops."""
    config = resource["config"]
    while "condition" in config or "loop_type" in config:
        config = config["config"]
    return config


def app_settings() -> list[dict[str, Any]]:
    """The Function App's ``siteConfig.appSettings`` entries (name/value)."""
    (site,) = resources_of_type(parse(FUNCTION_APP), "Microsoft.Web/sites").values()
    return body(site)["properties"]["siteConfig"]["appSettings"]


def comment_block_above(path: Path, symbol: str) -> str:
    """The consecutive // comment lines directly above ``resource <symbol>``."""
    lines = path.read_text().splitlines()
    (index,) = [i for i, line in enumerate(lines) if re.match(rf"resource {symbol}\b", line)]
    block: list[str] = []
    for line in reversed(lines[:index]):
        if not line.startswith("//"):
            break
        block.insert(0, line)
    return "\n".join(block)


def resource_source(path: Path, symbol: str) -> str:
    """The source text of ``resource <symbol> ... = {`` up to its closing brace at column 0."""
    text = path.read_text()
    start = re.search(rf"^resource {symbol}\b.*$", text, re.MULTILINE)
    assert start, f"resource {symbol} not found in {path}"
    end = text.index("\n}", start.end())
    return text[start.start() : end + 2]


@functools.cache
def read_bicepparam(path: Path) -> tuple[Path, dict[str, Any]]:
    """(template the file is `using`, {param name: value}) of a .bicepparam file.

    Each ``param x = <value>`` is re-read as ``var x = <value>`` so pycep parses the values with
    Bicep's own expression grammar.
    """
    text = path.read_text()
    using = re.search(r"^using\s+'([^']+)'", text, re.MULTILINE)
    assert using, f"{path}: no `using '<template>'` line"
    as_bicep = re.sub(r"^using\s+.*$", "", text, flags=re.MULTILINE)
    as_bicep = re.sub(r"^param\s+", "var ", as_bicep, flags=re.MULTILINE)
    variables = _parser().parse(text=as_bicep).get("variables", {})
    values = {name: v["value"] for name, v in variables.items()}
    return (path.parent / using.group(1)).resolve(), values
