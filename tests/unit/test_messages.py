"""Query parameters and SearchRequest bodies (scim_core.messages.Query.parse), RFC 7644 §3.4.2."""

from __future__ import annotations

from typing import Any

import pytest

from scim_core.messages import MAX_RESULTS, Query, QueryError


def test_defaults() -> None:
    assert Query.parse({}) == Query()
    q = Query()
    assert (q.start_index, q.count, q.filter, q.attributes) == (1, None, None, [])


def test_get_parameters_as_strings() -> None:
    q = Query.parse(
        {
            "filter": 'userName eq "a"',
            "attributes": "userName, emails.value",
            "excludedAttributes": "members",
            "sortBy": "userName",
            "sortOrder": "Descending",
            "startIndex": "3",
            "count": " 20 ",
            "unknown": "ignored",
        }
    )
    assert q == Query(
        attributes=["userName", "emails.value"],
        excluded_attributes=["members"],
        filter='userName eq "a"',
        sort_by="userName",
        sort_order="descending",
        start_index=3,
        count=20,
    )


def test_search_request_body_types() -> None:
    q = Query.parse({"attributes": ["userName", "name.givenName,emails"], "count": 5.0})
    assert q.attributes == ["userName", "name.givenName", "emails"]
    assert q.count == 5


@pytest.mark.parametrize(
    ("params", "start", "count"),
    [
        ({"startIndex": "0"}, 1, None),  # §3.4.2.4: less than 1 is interpreted as 1
        ({"startIndex": "-7"}, 1, None),
        ({"count": "-1"}, 1, 0),  # negative counts are 0
        ({"count": str(MAX_RESULTS * 10)}, 1, MAX_RESULTS),  # at most maxResults
        ({"startIndex": "9" * 30}, int("9" * 30), None),
    ],
)
def test_out_of_range_values_are_clamped(params: dict[str, Any], start: int, count: Any) -> None:
    q = Query.parse(params)
    assert (q.start_index, q.count) == (start, count)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"startIndex": "abc"}, "startIndex"),
        ({"count": "1.5"}, "count"),
        ({"count": 2.5}, "count"),
        ({"count": True}, "count"),
        ({"count": [1]}, "count"),
        ({"startIndex": "1" * 5000}, "startIndex"),
        ({"sortOrder": "sideways"}, "sortOrder"),
        ({"filter": 7}, "filter"),
        ({"sortBy": ["a"]}, "sortBy"),
        ({"attributes": 3}, "attributes"),
        ({"excludedAttributes": ["a", 1]}, "excludedAttributes"),
    ],
)
def test_bad_values_name_the_parameter(params: dict[str, Any], param: str) -> None:
    with pytest.raises(QueryError) as caught:
        Query.parse(params)
    assert caught.value.param == param
