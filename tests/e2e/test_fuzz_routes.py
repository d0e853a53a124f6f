"""No 500 from any route, method, body, query or header, through the local host (RFC 7644 §3.12).

Every route ``function_app`` serves (SCIM resources, searches, Bulk, discovery, /Me, /Events,
the catch-all, /status and the Graph webhook) takes every method, with generated bodies (valid
and broken JSON, duplicate names, huge and non-finite numbers, lone surrogates, invalid UTF-8,
deep nesting), query parameters (thousands of attribute names, long and deep filters, extreme
``count``/``startIndex``) and headers (If-Match, If-None-Match, Content-Type). Each answer is a
success, or a SCIM error body with its status: never a 500, never HTML, never a stack trace.

``make test`` draws the same examples every run; ``HYPOTHESIS_PROFILE=explore make test`` draws
new ones, as many as that profile allows (tests/conftest.py).
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scimclient import Client, unique

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]
ROUTES = [
    "/Users",
    "/Users/{user}",
    "/Users/.search",
    "/Groups",
    "/Groups/{group}",
    "/Groups/.search",
    "/.search",
    "/Bulk",
    "/ServiceProviderConfig",
    "/Schemas",
    "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
    "/ResourceTypes",
    "/ResourceTypes/User",
    "/Me",
    "/Events",
    "/Nope/deeper",
    "/Users/{user}/extra",
    "/Users/%00",
    "/Groups/..%2F..%2Fstatus",
]
OUTSIDE = ["/status", "/graph/notifications"]

# Each route/method pair gets its own draws; the explore profile draws many more.
EXAMPLES = 200 if os.environ.get("HYPOTHESIS_PROFILE") == "explore" else 12
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

texts = st.text(max_size=30) | st.sampled_from(['userName eq "x"', "x" * 5000, "[" * 60])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
RAW_BODIES = [
    b"",
    b"{",
    b"null",
    b'{"count": ' + b"9" * 5000 + b"}",
    b'{"count": 1e999999}',
    b'{"filter": "id pr", "filter": "id pr"}',
    b'{"userName": "x\\ud800"}',
    b"\xff\xfe\x00{",
    b"[" * 5000 + b"]" * 5000,
    b'{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": 1e999}',
    b'{"Operations": [{"op": "add", "path": "members[value eq \\"x\\"", "value": 1}]}',
]
bodies = st.one_of(
    st.sampled_from(RAW_BODIES),
    json_values.map(lambda v: json.dumps(v, allow_nan=True).encode()),
    st.fixed_dictionaries({"schemas": st.just([USER]), "userName": texts}).map(
        lambda v: json.dumps(v).encode()
    ),
)
query_values = st.one_of(
    texts,
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.just(",".join(f"a{i}" for i in range(5000))),
    st.just(" or ".join(['userName eq "x"'] * 400)),
    st.just("(" * 80 + "id pr" + ")" * 80),
)
queries = st.dictionaries(
    st.sampled_from(
        [
            "filter",
            "attributes",
            "excludedAttributes",
            "count",
            "startIndex",
            "sortBy",
            "sortOrder",
            "cursor",
        ]
    ),
    query_values,
    max_size=3,
)
headers = st.fixed_dictionaries(
    {},
    optional={
        "If-Match": st.sampled_from(['W/"x"', "*", "", '"' * 300]),
        "If-None-Match": st.sampled_from(['W/"x"', "*"]),
        "Content-Type": st.sampled_from(
            ["application/scim+json", "application/json; charset=utf-8", "text/html", "a/b+json"]
        ),
    },
)


def check(resp: requests.Response) -> None:
    assert resp.status_code < 500 or resp.status_code == 501, (resp.status_code, resp.text[:300])
    assert "Traceback" not in resp.text and "<html" not in resp.text.lower()
    if resp.status_code >= 400:
        body = resp.json()
        assert body["schemas"] == [ERROR] and body["status"] == str(resp.status_code)
        assert body["detail"]


@pytest.fixture(scope="module")
def names(host: Any) -> dict[str, str]:
    local, token = host
    scim = Client(local.base_url + "/scim/v2", token)
    user = scim.post("/Users", {"schemas": [USER], "userName": unique("fz") + "@x.com"}).json()
    group = scim.post("/Groups", {"displayName": unique("fz")}).json()
    return {"user": user["id"], "group": group["id"]}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("route", ROUTES)
def test_every_route_and_method_answers_without_a_500(
    scim: Client, names: dict[str, str], route: str, method: str
) -> None:
    path = route.format(**names)

    @FUZZ
    @given(body=bodies, params=queries, extra=headers)
    def run(body: bytes, params: dict[str, str], extra: Any) -> None:
        resp = scim.request(method, path, data=body or None, params=params, headers=extra)
        check(resp)

    run()


def test_routes_outside_the_scim_base_answer_without_a_500(scim: Client) -> None:
    base = scim.base.rsplit("/scim/v2", 1)[0]

    @FUZZ
    @given(route=st.sampled_from(OUTSIDE), method=st.sampled_from(METHODS), body=bodies)
    def run(route: str, method: str, body: bytes) -> None:
        resp = scim.http.request(
            method,
            base + route,
            data=body,
            headers={"Authorization": f"Bearer {scim.token}", "Content-Type": "application/json"},
            params={"validationToken": "<b>x</b>"} if method == "POST" else None,
            timeout=30,
        )
        assert resp.status_code < 500 or resp.status_code in (501, 503), resp.text[:300]
        assert "Traceback" not in resp.text

    run()
