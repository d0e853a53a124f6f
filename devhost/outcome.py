"""What a timer fired by ``python -m devhost --fire-timer`` (``make sync``) achieved.

A Graph sync run deliberately returns normally for the trouble an operator must fix (no Graph
credential, Graph unreachable, a 403, throttling): it records the error in the state table's
status record and logs one line, so the Functions host (and devhost) see a successful
invocation (graph_enrich/sync.py). "It ran" therefore says nothing; the status record of this
run does. This module reads it back and turns it into a line for the operator and an exit code. The
token-age timer (scim_core/token_age.py) is reported the same way, from its ``tokens.age``
record: each slot's age in days.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Exit codes of ``--fire-timer``: 0 the run did its work, 1 it failed or stopped on an error.
OK, FAILED = 0, 1


@dataclass(frozen=True)
class TimerOutcome:
    code: int
    message: str


def graph_sync_outcome(status: Mapping[str, Any], started: datetime) -> TimerOutcome:
    """The outcome of the run that started at ``started``, from ``graph.sync.status``."""
    last = status.get("lastRun")
    finished = _parse(last.get("finished")) if isinstance(last, Mapping) else None
    if not isinstance(last, Mapping) or finished is None or finished < started:
        # A skipped run writes no status (another run held the cursor's lease).
        return TimerOutcome(OK, "graph_sync recorded no run: skipped (another run holds the lease)")
    outcome = str(last.get("outcome", "unknown"))
    figures = ", ".join(
        f"{k} {last[k]}"
        for k in ("round", "pages", "changes", "enriched", "unmatched")
        if k in last
    )
    error = last.get("error")
    if error:
        kind = last.get("error_kind") or "error"
        failures = status.get("consecutiveFailures")
        streak = f"; {failures} failed runs in a row" if isinstance(failures, int) else ""
        return TimerOutcome(FAILED, f"graph_sync {outcome} [{kind}]: {error}{streak}")
    return TimerOutcome(OK, f"graph_sync {outcome}: {figures}")


def token_age_outcome(record: Mapping[str, Any], started: datetime) -> TimerOutcome:
    """The ages the run that started at ``started`` recorded in ``tokens.age``
    (scim_core/token_age.py): slot names and days only, never a fingerprint."""
    checked = _parse(record.get("checked"))
    if checked is None or checked < started:
        return TimerOutcome(FAILED, "token_age recorded nothing: see the log")
    slots = record.get("slots") if isinstance(record.get("slots"), Mapping) else {}
    ages = []
    for slot, entry in dict(slots or {}).items():
        first = _parse(entry.get("firstSeen")) if isinstance(entry, Mapping) else None
        if first is not None:
            ages.append(f"{slot} {int((checked - first).total_seconds() // 86400)} days")
    return TimerOutcome(OK, "token_age: " + (", ".join(ages) or "no static token configured"))


def events_push_outcome(record: Mapping[str, Any], started: datetime) -> TimerOutcome:
    """The RFC 8935 push run's figures from ``events.push`` (scim_core/events/push.py). A run
    that found nothing to push (or events off, or push unset) writes no record."""
    last = record.get("lastRun")
    finished = _parse(last.get("finished")) if isinstance(last, Mapping) else None
    if not isinstance(last, Mapping) or finished is None or finished < started:
        return TimerOutcome(
            OK,
            "events_push recorded no run: nothing to push, push off, or skipped "
            "(another run's lease or a back-off)",
        )
    figures = f"pushed {last.get('pushed', 0)}, refused {last.get('refused', 0)}"
    if last.get("outcome") == "failed":
        return TimerOutcome(
            FAILED,
            f"events_push failed: {last.get('error')}; {figures}; "
            f"{record.get('failures')} failed runs in a row, "
            f"next try after {record.get('retryAt')}",
        )
    return TimerOutcome(OK, f"events_push {last.get('outcome')}: {figures}")


def events_retention_outcome(record: Mapping[str, Any], started: datetime) -> TimerOutcome:
    """What the retention run removed, from ``events.retention``; none when events are off."""
    ran = _parse(record.get("ran"))
    if ran is None or ran < started:
        return TimerOutcome(OK, "events_retention recorded no run: events are off (SCIM_EVENTS)")
    return TimerOutcome(
        OK,
        f"events_retention: removed {record.get('removed')} events older than "
        f"{record.get('days')} days",
    )


#: Timers whose outcome devhost can report, by (app module, function name): the state record
#: the run writes and how to judge it. Other apps' timers report only that they ran.
REPORTERS: dict[
    tuple[str, str], tuple[str, Callable[[Mapping[str, Any], datetime], TimerOutcome]]
] = {
    ("function_app", "graph_sync"): ("graph.sync.status", graph_sync_outcome),
    ("function_app", "token_age"): ("tokens.age", token_age_outcome),
    ("function_app", "events_push"): ("events.push", events_push_outcome),
    ("function_app", "events_retention"): ("events.retention", events_retention_outcome),
}


def report(
    module: str, name: str, env: Mapping[str, str], started: datetime
) -> TimerOutcome | None:
    """Read the timer's status record from the store ``env`` (or the environment) names;
    None for a timer without a reporter. Storage trouble is an outcome too, not a traceback."""
    reporter = REPORTERS.get((module, name))
    if reporter is None:
        return None
    record, judge = reporter
    from scim_core.errors import ScimError
    from scim_core.settings import Settings
    from scim_core.wiring import ConfigurationError, build_store

    try:
        store = build_store(Settings.from_env({**os.environ, **env}))
        found = store.get_state(record)
    except (ScimError, ConfigurationError, ValueError) as exc:
        return TimerOutcome(FAILED, f"{name} ran, but its status record is unreadable: {exc}")
    return judge(found[0] if found is not None else {}, started)


def _parse(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
