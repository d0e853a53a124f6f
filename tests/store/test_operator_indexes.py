"""Operator-chosen indexes (``SCIM_INDEXED_ATTRIBUTES``, scim_core.indexes) on both stores: one
row per distinct value written in the resource's own transactions, moved as values change,
consistent under concurrent writers, and used by the planner once built."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from scim_core.http import ScimRequest
from scim_core.indexes import IndexReadiness, built_indexes, parse_indexed
from scim_core.schema import ENTERPRISE_USER_SCHEMA, default_resource_types
from scim_core.service import ScimService
from scim_core.store import Store
from scim_core.store.table import TableStore
from tests.store.test_contract import user

EMAIL = "x:emails.value"
BASE = "https://scim.test/scim/v2"


def call(service: ScimService, method: str, path: str, body: Any = None, **query: str) -> Any:
    data = json.dumps(body).encode() if body is not None else b""
    headers = {"content-type": "application/scim+json"}
    resp = service.handle(ScimRequest(method, path, BASE, query, headers, data))
    return resp.status, json.loads(resp.body) if resp.body else {}


def test_every_value_is_a_row_and_moves_with_the_document(store: Store) -> None:
    """Keys ``name`` and ``name#n`` are values of one index; a replace deletes the rows of
    values gone and creates those of new values, however the values are numbered."""
    doc, keys = user("a")
    created = store.create("User", doc, {**keys, EMAIL: "a@x", f"{EMAIL}#1": "b@x"})
    assert store.lookup("User", EMAIL, "a@x") == [doc["id"]]
    assert store.lookup("User", EMAIL, "b@x") == [doc["id"]]
    moved = store.replace("User", doc, {**keys, EMAIL: "b@x", f"{EMAIL}#1": "c@x"}, created.etag)
    assert store.lookup("User", EMAIL, "a@x") == []
    assert store.lookup("User", EMAIL, "b@x") == [doc["id"]]
    assert store.lookup("User", EMAIL, "c@x") == [doc["id"]]
    store.delete("User", doc["id"], moved.etag)
    assert store.lookup("User", EMAIL, "b@x") == store.lookup("User", EMAIL, "c@x") == []


def test_operator_index_keys_are_checked(store: Store) -> None:
    """Only users have operator indexes; a key must be ``x:<name>[#n]``."""
    doc, keys = user("a")
    with pytest.raises(ValueError, match="no index"):
        store.create("User", doc, {**keys, "x:": "v"})
    with pytest.raises(ValueError, match="no index"):
        store.create("User", doc, {**keys, f"{EMAIL}#one": "v"})
    with pytest.raises(ValueError, match="no index"):
        store.lookup("Group", EMAIL, "v")


def test_service_indexes_every_email_case_insensitively(store: Store) -> None:
    """emails.value eq finds a user by any of its emails, in any letter case."""
    service = ScimService(store)
    body = {
        "userName": "ann",
        "emails": [{"value": "Ann@Contoso.com", "primary": True}, {"value": "a2@Contoso.com"}],
        ENTERPRISE_USER_SCHEMA: {"employeeNumber": "0042"},
    }
    status, created = call(service, "POST", "/Users", body)
    assert status == 201
    for flt in (
        'emails.value eq "ann@contoso.COM"',
        'emails eq "A2@contoso.com"',
        'employeeNumber eq "0042"',
    ):
        status, found = call(service, "GET", "/Users", filter=flt)
        assert status == 200 and [r["id"] for r in found["Resources"]] == [created["id"]], flt
    status, _ = call(
        service,
        "PATCH",
        f"/Users/{created['id']}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "emails", "value": [{"value": "new@x.com"}]}],
        },
    )
    assert status == 200
    _, gone = call(service, "GET", "/Users", filter='emails.value eq "ann@contoso.com"')
    _, new = call(service, "GET", "/Users", filter='emails.value eq "NEW@x.com"')
    assert gone["totalResults"] == 0 and new["totalResults"] == 1


def test_too_many_values_of_an_indexed_attribute_is_invalid_value(store: Store) -> None:
    """Each value is a row in the user's transaction, which holds at most 100 operations."""
    emails = [{"value": f"e{n}@x.com"} for n in range(21)]
    status, err = call(ScimService(store), "POST", "/Users", {"userName": "many", "emails": emails})
    assert status == 400 and err["scimType"] == "invalidValue"


def test_concurrent_email_changes_leave_consistent_rows(store: Store) -> None:
    """Writers racing on one user's emails (ETag retries): afterwards the index holds exactly
    the final document's values."""
    service = ScimService(store)
    _, created = call(service, "POST", "/Users", {"userName": "race", "emails": [{"value": "s@x"}]})
    uid = created["id"]
    used: set[str] = {"s@x"}
    errors: list[Any] = []

    def writer(n: int) -> None:
        for k in range(4):
            values = [f"w{n}-{k}@x", f"shared{k % 2}@x"]
            used.update(values)
            status, body = call(
                service,
                "PUT",
                f"/Users/{uid}",
                {"userName": "race", "emails": [{"value": v} for v in values]},
            )
            # 412 only when one writer lost its ETag race WRITE_ATTEMPTS times in a row.
            if status not in (200, 412):
                errors.append(body)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    _, final = call(service, "GET", f"/Users/{uid}")
    final_values = {e["value"] for e in final["emails"]}
    for value in used:
        expected = [uid] if value in final_values else []
        assert store.lookup("User", EMAIL, value) == expected, value


def test_planner_uses_an_index_only_once_built(store: Store) -> None:
    """An instance with users that gains an index does not trust it before the reindex marks it
    built; a new instance (no users) marks its indexes built on the first check."""
    types = default_resource_types()
    old = ScimService(store, indexed_attributes="")
    call(old, "POST", "/Users", {"userName": "pre", "emails": [{"value": "pre@x"}]})
    new = ScimService(store)
    assert new.readiness.ready() == ()
    _, found = call(new, "GET", "/Users", filter='emails.value eq "pre@x"')
    assert found["totalResults"] == 1  # answered by a scan, not a half-built index
    fresh = MemoryStoreFactory()
    readiness = IndexReadiness(fresh, parse_indexed("emails.value", types["User"]))
    assert [i.name for i in readiness.ready()] == [EMAIL]
    assert built_indexes(fresh) == {EMAIL, "lm"}


def MemoryStoreFactory() -> Store:  # noqa: N802 - reads as a constructor
    from scim_core.store.memory import MemoryStore

    return MemoryStore()


def test_table_index_lookup_is_one_request(table_store: TableStore) -> None:
    """On Table Storage an emails.value eq is a range read of index rows and a point read."""
    service = ScimService(table_store)
    call(service, "POST", "/Users", {"userName": "t", "emails": [{"value": "t@x"}]})
    call(service, "GET", "/Users", filter='emails.value eq "t@x"')  # readiness, once a process
    before = table_store.request_count
    _, found = call(service, "GET", "/Users", filter='emails.value eq "T@X"')
    assert found["totalResults"] == 1
    assert table_store.request_count - before == 2
