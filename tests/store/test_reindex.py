"""The one-shot reindex (scim_core.reindex) on both stores: after SCIM_INDEXED_ATTRIBUTES
changes, it indexes the existing users, resumes after an interruption, rewrites nothing the
second time, and only then does the planner use the new index."""

from __future__ import annotations

import pytest

from scim_core.indexes import built_indexes
from scim_core.reindex import CHECKPOINT, Report, reindex
from scim_core.reindex import PAGE as REINDEX_PAGE
from scim_core.service import ScimService
from scim_core.store import Store
from tests.store.test_operator_indexes import EMAIL, call

USERS = 23


class Interrupted(Exception):
    pass


@pytest.fixture
def old_instance(store: Store, monkeypatch: pytest.MonkeyPatch) -> Store:
    """Users written by a service that indexed nothing; pages of 5 so a walk has several."""
    monkeypatch.setattr("scim_core.reindex.PAGE", 5)
    old = ScimService(store, indexed_attributes="")
    for n in range(USERS):
        body = {"userName": f"u{n}", "emails": [{"value": f"U{n}@X.com"}, {"value": "all@x"}]}
        assert call(old, "POST", "/Users", body)[0] == 201
    return store


def test_reindex_builds_the_index_and_the_planner_then_uses_it(old_instance: Store) -> None:
    new = ScimService(old_instance)
    assert old_instance.lookup("User", EMAIL, "all@x") == []
    report = reindex(new)
    assert (report.examined, report.rewritten) == (USERS, USERS)
    assert len(old_instance.lookup("User", EMAIL, "all@x")) == USERS
    assert old_instance.lookup("User", EMAIL, "u7@x.com") != []
    assert EMAIL in built_indexes(old_instance)
    fresh = ScimService(old_instance)  # a process started after the reindex
    assert [i.name for i in fresh.readiness.ready()] == sorted(i.name for i in fresh.indexes)


def test_reindex_resumes_after_an_interruption_and_is_idempotent(old_instance: Store) -> None:
    """Killed after two pages: the next run starts after the checkpoint, not from the top; a
    third run rewrites nothing."""
    new = ScimService(old_instance)

    def stop_after_two(report: Report) -> None:
        if report.examined >= 10:
            raise Interrupted

    with pytest.raises(Interrupted):
        reindex(new, on_page=stop_after_two)
    state = old_instance.get_state(CHECKPOINT)
    assert state is not None and state[0]["after"] and not state[0]["done"]
    assert EMAIL not in built_indexes(old_instance)
    resumed = reindex(new)
    assert resumed.resumed_after == state[0]["after"]
    assert resumed.examined == USERS - 10 and resumed.rewritten == USERS - 10
    assert len(old_instance.lookup("User", EMAIL, "all@x")) == USERS
    again = reindex(new)
    assert (again.examined, again.rewritten) == (USERS, 0)


def test_reindex_drops_rows_of_an_index_removed_from_the_setting(old_instance: Store) -> None:
    reindex(ScimService(old_instance))
    narrowed = ScimService(
        old_instance,
        indexed_attributes="urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    )
    report = reindex(narrowed)
    assert report.rewritten == USERS
    assert old_instance.lookup("User", EMAIL, "all@x") == []
    assert EMAIL not in built_indexes(old_instance)


def test_reindex_page_default_is_bounded() -> None:
    """A page of the walk is a bounded batch (memory), checkpointed after each."""
    assert 0 < REINDEX_PAGE <= 1000
