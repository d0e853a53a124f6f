"""Per-customer parameter files set only what main.bicep declares, with values it accepts.

`az deployment group create --parameters <customer>.bicepparam` rejects unknown parameters and
out-of-range values only at deploy time, in the customer's subscription; these tests move that
failure to the commit.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from .templates import INFRA, MAIN, bicepparam_files, parse, read_bicepparam

PARAM_FILES = bicepparam_files()
MAIN_PARAMETERS = parse(MAIN)["parameters"]


def _decorator(parameter: dict[str, Any], name: str) -> Any:
    found = [d["argument"] for d in parameter["decorators"] if d["type"] == name]
    return found[0] if found else None


def test_there_is_an_example_customer() -> None:
    assert INFRA / "customers" / "contoso.bicepparam" in PARAM_FILES


@pytest.mark.parametrize("path", PARAM_FILES, ids=[p.stem for p in PARAM_FILES])
def test_parameter_file_uses_main_bicep(path: Path) -> None:
    template, _ = read_bicepparam(path)
    assert template == MAIN


@pytest.mark.parametrize("path", PARAM_FILES, ids=[p.stem for p in PARAM_FILES])
def test_parameter_file_sets_only_declared_parameters(path: Path) -> None:
    _, values = read_bicepparam(path)
    assert set(values) - set(MAIN_PARAMETERS) == set()


@pytest.mark.parametrize("path", PARAM_FILES, ids=[p.stem for p in PARAM_FILES])
def test_parameter_file_sets_every_required_parameter(path: Path) -> None:
    _, values = read_bicepparam(path)
    required = {name for name, p in MAIN_PARAMETERS.items() if p["default"] is None}
    assert required - set(values) == set()


@pytest.mark.parametrize("path", PARAM_FILES, ids=[p.stem for p in PARAM_FILES])
def test_parameter_values_satisfy_the_decorators(path: Path) -> None:
    """@allowed, @minValue/@maxValue and @minLength/@maxLength hold for every value set."""
    _, values = read_bicepparam(path)
    for name, value in values.items():
        parameter = MAIN_PARAMETERS[name]
        allowed = _decorator(parameter, "allowed")
        if allowed is not None:
            assert value in allowed, name
        if parameter["type"] == "int":
            assert isinstance(value, int), name
            low, high = _decorator(parameter, "min_value"), _decorator(parameter, "max_value")
            assert low is None or value >= low, name
            assert high is None or value <= high, name
        if parameter["type"] == "string":
            assert isinstance(value, str), name
            low, high = _decorator(parameter, "min_length"), _decorator(parameter, "max_length")
            assert low is None or len(value) >= low, name
            assert high is None or len(value) <= high, name


@pytest.mark.parametrize("path", PARAM_FILES, ids=[p.stem for p in PARAM_FILES])
def test_customer_name_matches_the_file_name(path: Path) -> None:
    """The deploy tool finds infra/customers/<customer>.bicepparam by the customer's name."""
    _, values = read_bicepparam(path)
    assert values["customerName"] == path.stem


def test_azd_parameters_are_declared() -> None:
    """infra/main.parameters.json (azd) names only parameters main.bicep declares."""
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert set(parameters) - set(MAIN_PARAMETERS) == set()


def test_azd_passes_the_principal_type() -> None:
    """A CI deployment by a service principal needs principalType ServicePrincipal on its role
    assignment: azd's AZURE_PRINCIPAL_TYPE goes to deployerPrincipalType (User when unset)."""
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["deployerPrincipalId"]["value"] == "${AZURE_PRINCIPAL_ID}"
    assert parameters["deployerPrincipalType"]["value"] == "${AZURE_PRINCIPAL_TYPE=User}"
    allowed = [d["argument"] for d in MAIN_PARAMETERS["deployerPrincipalType"]["decorators"]]
    assert ["User", "ServicePrincipal", "Group"] in allowed


def test_azd_hooks_check_the_name_first_and_store_the_secrets_after() -> None:
    """preprovision validates the environment name (it becomes customerName) before anything
    is created; postprovision stores the token and the Graph clientState."""
    # No YAML parser in the dev dependencies: read the hooks' `run:` lines in file order.
    text = (INFRA.parent / "azure.yaml").read_text()
    hooks = text.split("\nhooks:\n", 1)[1]
    pre, post = hooks.split("  postprovision:", 1)
    assert pre.lstrip().startswith("preprovision:")
    runs = [line.split("run:", 1)[1] for line in pre.splitlines() if "run:" in line]
    assert len(runs) == 2 and all("-m infra.deploy check-name" in r for r in runs)
    assert all("AZURE_ENV_NAME" in r for r in runs)
    assert post.count("-m infra.deploy ensure-token") == 2
