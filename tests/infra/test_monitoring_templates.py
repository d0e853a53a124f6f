"""Alert rules and the workbook of an instance (infra/modules/alerts.bicep, workbook.bicep).

Parsed with pycep (the Bicep CLI cannot be downloaded here) and checked against what the app
really emits: the KQL is not run here, so the tests pin the strings it depends on (the SCIM
route prefix, the Graph sync log line) to their sources in the code.

Thresholds are relative to Entra's quarantine rule (Microsoft Learn, "Application provisioning
in quarantine status": quarantine above 40% failed provisioning events, evaluated from 5,000
failures; invalid credentials quarantine at once).
"""

from __future__ import annotations

from typing import Any

import pytest

import function_app
from graph_enrich.sync import SyncReport

from .templates import INFRA, MAIN, body, parse, read_bicepparam, resources_of_type

ALERTS = INFRA / "modules" / "alerts.bicep"
WORKBOOK = INFRA / "modules" / "workbook.bicep"
ENTRA_QUARANTINE_PERCENT = 40


def _value(template: dict[str, Any], name: str) -> Any:
    return template["variables"][name]["value"]


def _render(expression: Any, template: dict[str, Any], values: dict[str, Any]) -> str:
    """Evaluate the replace()/string() chains alerts.bicep builds its queries with."""
    if isinstance(expression, str):
        if expression in template.get("variables", {}):
            return _render(_value(template, expression), template, values)
        return str(values.get(expression, expression))
    function = expression["function"]
    args = function["parameters"]
    if function["type"] == "string":
        return str(values[args["value_to_convert"]])
    assert function["type"] == "replace", function["type"]
    return _render(args["original_string"], template, values).replace(
        _render(args["old_string"], template, values),
        _render(args["new_string"], template, values),
    )


def _rules() -> dict[str, dict[str, Any]]:
    template = parse(ALERTS)
    return {rule["name"].split("}-", 1)[1]: rule for rule in _value(template, "rules")}


def test_the_alert_rules_are_log_alerts_on_the_instances_application_insights() -> None:
    template = parse(ALERTS)
    (rule,) = resources_of_type(template, "Microsoft.Insights/scheduledQueryRules").values()
    config = body(rule)
    assert config["kind"] == "LogAlert"
    (scope,) = config["properties"]["scopes"]
    assert scope["operator"]["operands"] == {"operand_1": "applicationInsights", "operand_2": "id"}
    assert config["properties"]["actions"] == "actions"
    assert set(_rules()) == {
        "scim-5xx-rate",
        "scim-4xx-rate",
        "scim-auth-failures",
        "graph-sync-failures",
    }


def test_alerts_route_to_the_action_group_of_the_parameter_file() -> None:
    """main.bicep passes alertActionGroupId; the example .bicepparam shows where to set it."""
    actions = _value(parse(ALERTS), "actions")
    assert "actionGroupId" in str(actions["actionGroups"])
    module = parse(MAIN)["modules"]["alerts"]
    assert module["config"]["params"]["actionGroupId"] == "alertActionGroupId"
    _, values = read_bicepparam(INFRA / "customers" / "contoso.bicepparam")
    assert values["alertActionGroupId"] == ""


@pytest.mark.parametrize(
    ("parameter", "default"),
    [("alertServerErrorPercent", 10), ("alertClientErrorPercent", 20)],
    ids=["5xx", "4xx"],
)
def test_rate_thresholds_stay_below_entras_quarantine_share(parameter: str, default: int) -> None:
    declared = parse(MAIN)["parameters"][parameter]
    assert declared["default"] == default < ENTRA_QUARANTINE_PERCENT
    limits = {d["type"]: d for d in declared["decorators"]}
    assert limits["max_value"]["argument"] == ENTRA_QUARANTINE_PERCENT


@pytest.mark.parametrize(
    ("rule", "condition"),
    [
        ("scim-5xx-rate", "toint(resultCode) >= 500"),
        ("scim-4xx-rate", 'toint(resultCode) between (400 .. 499) and resultCode != "404"'),
    ],
    ids=["5xx", "4xx"],
)
def test_rate_queries_count_scim_requests_only(rule: str, condition: str) -> None:
    query = _render(
        _rules()[rule]["query"],
        parse(ALERTS),
        {"minimumRequests": 20, "serverErrorPercent": 10, "clientErrorPercent": 20},
    )
    assert f'url has "/{function_app.BASE}/"' in query
    assert f"matching = countif({condition})" in query
    assert "total >= 20 and matching * 100.0 / total >" in query


def test_the_graph_sync_alert_reads_the_line_each_run_logs() -> None:
    """graph_enrich/sync.py logs "graph sync <outcome> (<reason>): ..." per run; skipped runs
    (another run held the lease) are not failures and are left out."""
    query = _rules()["graph-sync-failures"]["query"]
    failed = SyncReport(reason="timer")
    failed.fail(RuntimeError("no Graph token"), "credentials")
    assert failed.summary().startswith("graph sync failed ")
    assert SyncReport(reason="timer").summary().startswith("graph sync complete ")
    assert 'message startswith "graph sync "' in query
    assert 'countif(message startswith "graph sync failed")' in query
    assert 'not(message startswith "graph sync skipped")' in query


def test_the_workbook_reads_the_instances_application_insights() -> None:
    template = parse(WORKBOOK)
    (workbook,) = resources_of_type(template, "Microsoft.Insights/workbooks").values()
    config = body(workbook)
    assert config["kind"] == "shared"
    assert config["properties"]["category"] == "workbook"
    assert config["properties"]["serializedData"]["function"]["type"] == "string"
    titles = " | ".join(tile["title"] for tile in _value(template, "tiles"))
    for chart in ("requests", "error rate", "latency", "Graph sync runs"):
        assert chart in titles
    assert parse(MAIN)["outputs"]["workbookId"]


def test_main_wires_both_modules_to_the_monitoring_module() -> None:
    modules = parse(MAIN)["modules"]
    for name in ("alerts", "workbook"):
        params = modules[name]["config"]["params"]
        accessor = params["applicationInsightsName"]["operator"]["operands"]
        assert accessor["operand_1"] == "monitoring"  # monitoring.outputs.applicationInsightsName
        assert (
            accessor["operand_2"]["operator"]["operands"]["operand_2"] == "applicationInsightsName"
        )
