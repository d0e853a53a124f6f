"""Fuzzing the service with hypothesis: arbitrary filters, PATCH bodies and JSON bodies
never produce anything but a SCIM response below 500 (no exception escapes ``handle``), and
a rejected PATCH leaves the stored resource unchanged (RFC 7644 §3.12, §3.5.2)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scim_core.http import ScimRequest
from scim_core.router import Router
from scim_core.service import ScimService
from scim_core.store.memory import MemoryStore

FUZZ = settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
BASE = "https://scim.test/scim/v2"
ENT = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
attr_names = st.sampled_from(
    [
        "userName",
        "displayName",
        "active",
        "emails",
        "emails.value",
        'emails[type eq "work"]',
        'emails[type eq "work"].value',
        "name",
        "name.givenName",
        "members",
        "title",
        "addresses",
        'addresses[type eq "work"].locality',
        f"{ENT}:manager",
        f"{ENT}:employeeNumber",
        "id",
        "meta",
        "groups",
        "roles",
        "nope",
        "urn:x:y:z",
        'members[value eq "x"]',
        "",
        "[",
        "a.b.c",
    ]
)
filter_atoms = st.sampled_from(
    [
        "userName",
        "emails.value",
        'emails[type eq "work"]',
        "meta.created",
        "active",
        "members",
        "name.givenName",
        "id",
        "externalId",
        "(",
        ")",
        "and",
        "or",
        "not",
        "eq",
        "ne",
        "co",
        "sw",
        "pr",
        "gt",
        "le",
        '"x"',
        "true",
        "null",
        "1.5",
        "[",
        "]",
        '"2020-01-01T00:00:00Z"',
        f"{ENT}:manager",
        "\\",
        '"',
    ]
)
filters = st.lists(filter_atoms, min_size=1, max_size=9).map(" ".join) | st.text(max_size=40)
ops = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Add", "replace", "Replace", "remove", "Remove", "bogus"])},
    optional={"path": attr_names, "value": json_values},
)
patch_bodies = (
    st.fixed_dictionaries(
        {
            "schemas": st.just(["urn:ietf:params:scim:api:messages:2.0:PatchOp"]),
            "Operations": st.lists(ops, max_size=4),
        }
    )
    | json_values
)


def _service() -> tuple[Router, str, str]:
    service = Router(ScimService(MemoryStore()), None)
    user = _call(
        service,
        "POST",
        "/Users",
        {
            "userName": "fuzz@x.com",
            "emails": [{"type": "work", "value": "fuzz@x.com"}],
            ENT: {"employeeNumber": "1"},
        },
    )[1]
    group = _call(
        service, "POST", "/Groups", {"displayName": "G", "members": [{"value": user["id"]}]}
    )[1]
    return service, user["id"], group["id"]


def _call(
    service: Router,
    method: str,
    path: str,
    body: Any = None,
    raw: bytes | None = None,
    **query: str,
) -> tuple[int, Any]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    resp = service.handle(
        ScimRequest(method, path, BASE, query, {"content-type": "application/scim+json"}, data)
    )
    assert resp.status < 500, resp.body
    return resp.status, json.loads(resp.body) if resp.body else None


@FUZZ
@given(flt=filters)
def test_filters_never_500(flt: str) -> None:
    service, _, _ = _service()
    for path in ("/Users", "/Groups"):
        status, body = _call(service, "GET", path, filter=flt)
        assert status in (200, 400), body
        if status == 400:
            assert body["scimType"] == "invalidFilter"


@FUZZ
@given(body=patch_bodies, target=st.sampled_from(["Users", "Groups"]))
def test_patch_never_500_and_rejects_atomically(body: Any, target: str) -> None:
    service, uid, gid = _service()
    rid = uid if target == "Users" else gid
    before = _call(service, "GET", f"/{target}/{rid}")[1]
    status, resp = _call(service, "PATCH", f"/{target}/{rid}", body)
    if status >= 400:
        assert resp["detail"] and resp["status"] == str(status)
        assert _call(service, "GET", f"/{target}/{rid}")[1] == before


@FUZZ
@given(body=json_values, target=st.sampled_from(["/Users", "/Groups", "/Bulk", "/.search"]))
def test_json_bodies_never_500(body: Any, target: str) -> None:
    service, uid, _ = _service()
    _call(service, "POST", target, body)
    _call(service, "PUT", f"/Users/{uid}", body)


@FUZZ
@given(raw=st.binary(max_size=60))
def test_raw_bytes_never_500(raw: bytes) -> None:
    service, uid, _ = _service()
    _call(service, "POST", "/Users", raw=raw)
    _call(service, "PATCH", f"/Users/{uid}", raw=raw)


@FUZZ
@given(
    attributes=st.text(max_size=30),
    excluded=st.text(max_size=30),
    sort_by=st.text(max_size=20),
    start=st.text(max_size=6),
    count=st.text(max_size=6),
)
def test_query_parameters_never_500(
    attributes: str, excluded: str, sort_by: str, start: str, count: str
) -> None:
    service, uid, gid = _service()
    params = {
        "attributes": attributes,
        "excludedAttributes": excluded,
        "sortBy": sort_by,
        "startIndex": start,
        "count": count,
    }
    for path in ("/Users", "/Groups", f"/Users/{uid}", f"/Groups/{gid}"):
        status, body = _call(service, "GET", path, **params)
        assert status in (200, 400), body
