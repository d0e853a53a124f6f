"""Alert rules and the workbook of an instance (infra/modules/alerts.bicep, workbook.bicep).

Parsed with pycep (the Bicep CLI cannot be downloaded here) and checked against what the app
really emits: the KQL is not run here, so the tests pin the strings it depends on (the SCIM
route prefix, the Graph sync log line) to their sources in the code.

Thresholds are relative to Entra's quarantine rule (Microsoft Learn, "Application provisioning
in quarantine status": quarantine above 40% failed provisioning events, evaluated from 5,000
failures; invalid credentials quarantine at once).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import function_app
from graph_enrich.sync import SyncReport
from scim_core.settings import Settings
from scim_core.store.memory import MemoryStore
from scim_core.token_age import LINE_PREFIX, record_token_ages
from tests.graph.test_config import _bindings

from .templates import (
    INFRA,
    MAIN,
    ROOT,
    app_settings,
    body,
    parse,
    read_bicepparam,
    resources_of_type,
)

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
        "token-not-rotated",
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


# --- the token-not-rotated rule --------------------------------------------------------------
#: Learn, "Create or edit a log search alert rule": evaluation "from one minute to one day", and
#: "the alert time range is limited to a maximum of two days".
MAX_FREQUENCY, MAX_WINDOW = timedelta(days=1), timedelta(days=2)
_DURATION = re.compile(r"^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?)?$")


def _duration(iso: str) -> timedelta:
    match = _DURATION.match(iso)
    assert match, iso
    days, hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(days=days, hours=hours, minutes=minutes)


def _kql(query: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Run the token rule's query over ``rows`` (``traces``: timestamp, message).

    Only the operator forms that query uses, with KQL's semantics for them (Learn, "parse-where
    operator", https://learn.microsoft.com/en-us/azure/kusto/query/parsewhereoperator: a string
    column matches as ``.*?``, a long as ``-?\\d+``, and rows that do not match are dropped;
    "arg_max() (aggregation function)": the row with the largest first expression per group).
    Any other form fails the test, so the query cannot drift from what is checked here."""
    table, *stages = [stage.strip() for stage in query.split("|")]
    assert table == "traces"
    for stage in stages:
        if m := re.fullmatch(r'where message startswith "([^"]*)"', stage):
            rows = [r for r in rows if r["message"].startswith(m[1])]
        elif m := re.fullmatch(r"parse-where message with (.*) \*", stage):
            pattern = ""
            for constant, column, kind in re.findall(r'"([^"]*)"|(\w+)(?::(\w+))?', m[1]):
                if constant:
                    pattern += re.escape(constant)
                else:
                    pattern += rf"(?P<{column}>-?\d+)" if kind == "long" else rf"(?P<{column}>.*?)"
            parsed = [(r, re.match(pattern, r["message"])) for r in rows]
            rows = [
                {
                    **r,
                    **{
                        k: int(v) if v.lstrip("-").isdigit() else v
                        for k, v in p.groupdict().items()
                    },
                }
                for r, p in parsed
                if p
            ]
        elif m := re.fullmatch(r"summarize arg_max\(timestamp, (\w+)\) by (\w+)", stage):
            latest: dict[Any, dict[str, Any]] = {}
            for r in rows:
                if r[m[2]] not in latest or r["timestamp"] > latest[r[m[2]]]["timestamp"]:
                    latest[r[m[2]]] = r
            rows = [
                {"timestamp": r["timestamp"], m[1]: r[m[1]], m[2]: k} for k, r in latest.items()
            ]
        elif m := re.fullmatch(r"where (\w+) > (\d+)", stage):
            rows = [r for r in rows if r[m[1]] > int(m[2])]
        else:
            raise AssertionError(f"query stage not understood here: {stage}")
    return rows


def _token_rule_query(max_days: int) -> str:
    return _rules()["token-not-rotated"]["query"].replace("${tokenMaxAgeDays}", str(max_days))


def _traces(
    config: Settings, days: range, store: MemoryStore, caplog: pytest.LogCaptureFixture
) -> list[dict[str, Any]]:
    """The lines the app's own timer code logs on each of ``days``, as ``traces`` rows."""
    rows = []
    for day in days:
        caplog.clear()
        now = datetime(2026, 1, 1, 5, 30, tzinfo=UTC) + timedelta(days=day)
        record_token_ages(store, config, now)
        rows += [{"timestamp": now, "message": r.getMessage()} for r in caplog.records]
    return rows


def test_the_token_rule_fires_on_the_line_the_timer_logs(caplog: pytest.LogCaptureFixture) -> None:
    """The rule's query over the lines scim_core/token_age.py really logs, in the rule's two-day
    window: quiet at 180 days, firing per slot after, and quiet again once the token rotated
    (the latest line per slot counts, though the old one is still in the window)."""
    caplog.set_level(logging.INFO, logger="scim")
    store = MemoryStore()
    both = Settings(bearer_token="entra-primary-token", app_token="app-token-value")
    old = _traces(both, range(0, 181), store, caplog)
    query = _token_rule_query(180)
    assert f'message startswith "{LINE_PREFIX}"' in query
    assert _kql(query, old[-4:]) == []  # days 179 and 180: not more than 180
    aged = old + _traces(both, range(181, 182), store, caplog)
    fired = _kql(query, aged[-4:])
    assert sorted((r["slot"], r["days"]) for r in fired) == [
        ("SCIM_APP_TOKEN", 181),
        ("SCIM_BEARER_TOKEN", 181),
    ]
    rotated = Settings(bearer_token="a-new-entra-token", app_token="app-token-value")
    after = aged + _traces(rotated, range(182, 183), store, caplog)
    assert [(r["slot"], r["days"]) for r in _kql(query, after[-4:])] == [("SCIM_APP_TOKEN", 182)]


def test_the_token_rule_splits_by_the_slot_the_query_returns() -> None:
    """One alert per token (dimension ``slot``, a string column: Learn allows up to six
    string or numeric dimensions), so the notification names the token to rotate."""
    rule = _rules()["token-not-rotated"]
    assert rule["dimensions"] == [{"name": "slot", "operator": "Include", "values": ["*"]}]
    assert "by slot" in rule["query"]
    others = [r for name, r in _rules().items() if name != "token-not-rotated"]
    assert all(r["dimensions"] == [] for r in others)
    (resource,) = resources_of_type(
        parse(ALERTS), "Microsoft.Insights/scheduledQueryRules"
    ).values()
    (criterion,) = body(resource)["properties"]["criteria"]["allOf"]
    assert criterion["dimensions"]["operator"]["operands"]["operand_2"] == "dimensions"


def test_the_token_rule_sees_two_daily_runs_within_azure_monitors_limits() -> None:
    """Evaluated daily over two days (both at Azure Monitor's maximum), against a timer that runs
    daily at a fixed time (TOKEN_AGE_SCHEDULE, the same in Azure, locally and by default): every
    evaluation sees a line of each slot even if one run was late or its line lost."""
    rule = _rules()["token-not-rotated"]
    frequency, window = _duration(rule["frequency"]), _duration(rule["window"])
    assert frequency <= MAX_FREQUENCY and window <= MAX_WINDOW
    schedule = {s["name"]: s["value"] for s in app_settings()}["TOKEN_AGE_SCHEDULE"]
    local = json.loads((ROOT / "local.settings.example.json").read_text())["Values"]
    assert schedule == Settings().token_age_schedule == local["TOKEN_AGE_SCHEDULE"]
    second, minute, hour, *daily = schedule.split()
    assert all(field.isdigit() for field in (second, minute, hour)) and daily == ["*", "*", "*"]
    assert window >= 2 * timedelta(days=1)


def test_the_token_age_limit_is_a_parameter_of_the_parameter_file() -> None:
    """180 days by default, bounded, passed through main.bicep; the example .bicepparam shows it."""
    declared = parse(MAIN)["parameters"]["alertTokenMaxAgeDays"]
    limits = {
        d["type"]: d["argument"] for d in declared["decorators"] if d["type"] != "description"
    }
    assert declared["default"] == 180 and limits == {"min_value": 1, "max_value": 730}
    module_limits = parse(ALERTS)["parameters"]["tokenMaxAgeDays"]["decorators"]
    assert {d["type"]: d["argument"] for d in module_limits if d["type"] != "description"} == limits
    module = parse(MAIN)["modules"]["alerts"]
    assert module["config"]["params"]["tokenMaxAgeDays"] == "alertTokenMaxAgeDays"
    _, values = read_bicepparam(INFRA / "customers" / "contoso.bicepparam")
    assert values["alertTokenMaxAgeDays"] == 180


def test_the_timer_is_bound_to_its_schedule_setting() -> None:
    """function_app.token_age runs on %TOKEN_AGE_SCHEDULE% (Learn, "Timer trigger for Azure
    Functions": an app setting name wrapped in percent signs), never on startup; as the worker
    indexes it."""
    timer = _bindings()["token_age"]
    assert timer["type"] == "timerTrigger" and timer["schedule"] == "%TOKEN_AGE_SCHEDULE%"
    assert timer["runOnStartup"] is False


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
