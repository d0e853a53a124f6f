"""Differential tests: scim_core.patch against scim2-server's PATCH as a reference oracle.

scim2-server applies a PATCH with ``PatchOp.patch`` of scim2-models
(``scim2_server.service.Service.apply_patch`` -> ``scim2_models.messages.patch_op``); the
oracle below makes the same call on the same ``User[EnterpriseUser]`` model, after validating
the body in the PATCH-request context as ``Service.read_patch`` does. Hypothesis generates users
and RFC 7644 §3.5.2 operations (lower-case op names, typed JSON values); both implementations
must agree on success vs. failure and on the resulting attributes.

The oracle runs with ``ScimPolicy(unmatched_path_filter=create)``: scim2-models' own setting
for Microsoft Entra's "a filtered path into a missing value creates it" rule (ENTRA.md), which
we implement, so that shape is compared too.

Intentional differences, excluded from generation (each is an Entra rule of ENTRA.md or a
leniency of ours; tests/unit/test_patch.py covers them):

1. Read-only attributes (``id``, ``meta``, ``groups``, ``manager.displayName``) in a path or a
   value: we ignore them silently (ENTRA.md), scim2-models refuses with ``mutability``.
2. Unknown sub-attributes inside a complex value: we drop them (ENTRA.md "Create": ignore
   unknown attributes of known schemas), scim2-models refuses with ``invalidValue``.
3. The manager as a plain string / ``""`` / ``[{"value": id}]``, and the bare path ``manager``
   (ENTRA.md "Manager"): scim2-models refuses a string for a complex attribute and needs the
   URN prefix.
4. ``remove`` with a ``value`` on a multi-valued attribute (Entra legacy member removal):
   scim2-models refuses it under its strict default policy.
5. Boolean strings: we take only ``"true"``/``"false"`` (any case, Entra); pydantic also takes
   ``"yes"``, ``"on"``, ``"1"``... Numbers for string attributes: we take their text,
   pydantic refuses. Only JSON booleans and strings are generated.
6. ``password``: we never store it (write-only, the service keeps no credentials).
7. Value syntax scim2-models checks and we do not: e-mail address syntax, URI syntax of
   references. Only valid e-mails are generated; references are not.
8. Error ``scimType``: only failure vs. success is compared (for unknown keys of a path-less
   value, we say ``invalidPath`` like the path form, scim2-models says ``invalidValue``).
9. Several values already marked primary in the stored document: scim2-models refuses any
   later PATCH; we do not fail on stored state a request did not cause. Generated users have at
   most one primary value per attribute.
10. Schema data, not PATCH: scim2-models declares ``manager.value`` required, so removing it
    alone fails there; our published enterprise schema (RFC 7643 §8.7.1) has it optional.
11. A write of a sub-attribute of a multi-valued attribute without a filter
    (``emails.display``) when the attribute has no values: we add one value holding it
    (RFC 7644 §3.5.2.1, a target that does not exist is added), scim2-models drops the write.
    And removing the last sub-attribute of a value: we drop the emptied value, scim2-models
    keeps ``{}`` (so its next ``emails.display`` write lands there). Such writes are not
    generated (tests/unit/test_patch.py covers ours); emptied values compare as absent.
"""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from scim2_models import Context, EnterpriseUser, Group, PatchOp, ScimPolicy, User
from scim2_models.exceptions import SCIMException

from scim_core.errors import ScimError
from scim_core.patch import PATCH_OP_SCHEMA, apply_patch
from scim_core.schema import GROUP_SCHEMA, USER_SCHEMA, default_resource_types
from scim_core.store import MemberChange

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
TYPES = default_resource_types()
USER, GROUP = TYPES["User"], TYPES["Group"]
Model = User[EnterpriseUser]
POLICY = ScimPolicy(unmatched_path_filter=ScimPolicy.UnmatchedPathFilter.create)
FAILED = "failed"

# --- generation ---------------------------------------------------------------------------------

text = st.text(alphabet="abcXY z1-", min_size=1, max_size=6)
emails = st.sampled_from(["a@example.com", "B@example.com", "b@example.com", "c@contoso.org"])
kinds = st.sampled_from(["work", "home", "other"])
booleans = st.booleans()


def _subset(d: dict[str, st.SearchStrategy[Any]], min_size: int = 0) -> st.SearchStrategy[Any]:
    """Objects with some of ``d``'s keys (at least ``min_size``)."""
    keys = st.lists(st.sampled_from(sorted(d)), unique=True, min_size=min_size)
    return keys.flatmap(lambda ks: st.fixed_dictionaries({k: d[k] for k in ks}))


names = _subset({"givenName": text, "familyName": text, "middleName": text}, 1)
email = _subset({"value": emails, "type": kinds, "display": text}, 1)
address = _subset({"type": kinds, "locality": text, "region": text, "postalCode": text}, 1)
role = _subset({"value": text, "display": text, "type": text}, 1)


def _one_primary(items: list[dict[str, Any]], marks: list[bool]) -> list[dict[str, Any]]:
    """At most one primary per attribute (difference 9)."""
    out, seen = [], False
    for item, mark in zip(items, marks, strict=False):
        if mark and not seen:
            item, seen = {**item, "primary": True}, True
        out.append(item)
    return out


def _values(element: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return st.builds(_one_primary, st.lists(element, max_size=3), st.lists(booleans, max_size=3))


users = st.builds(
    lambda base, ext: {**base, **({ENTERPRISE: ext} if ext else {})},
    st.fixed_dictionaries(
        {"userName": text},
        optional={
            "displayName": text,
            "nickName": text,
            "title": text,
            "externalId": text,
            "active": booleans,
            "name": names,
            "emails": _values(email),
            "addresses": _values(address),
            "roles": _values(role),
        },
    ),
    _subset(
        {
            "employeeNumber": text,
            "department": text,
            "manager": st.fixed_dictionaries({"value": text}),
        }
    ),
)

SIMPLE = [
    "displayName",
    "nickName",
    "title",
    "externalId",
    "userName",
    "name.givenName",
    "name.familyName",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:employeeNumber",
    f"{ENTERPRISE}:manager.value",
]
writes = st.sampled_from(["add", "replace", "Add", "Replace"])  # op case: both insensitive


def _op(op: str, path: str | None, value: Any = ...) -> dict[str, Any]:
    out: dict[str, Any] = {"op": op}
    if path is not None:
        out["path"] = path
    if value is not ...:
        out["value"] = value
    return out


def _filtered(attr: str, sub_values: dict[str, st.SearchStrategy[Any]]) -> Any:
    """``attr[type eq "k"]`` / ``attr[type eq "k"].sub`` operations."""
    path = st.builds(lambda k: f'{attr}[type eq "{k}"]', kinds)
    sub = st.sampled_from(sorted(sub_values))
    return st.one_of(
        st.builds(
            lambda o, p, sv: _op(o, f"{p}.{sv[0]}", sv[1]),
            writes,
            path,
            sub.flatmap(lambda s: st.tuples(st.just(s), sub_values[s])),
        ),
        st.builds(lambda o, p, v: _op(o, p, v), writes, path, _subset(sub_values, 1)),
        st.builds(lambda p: _op("remove", p), path),
        st.builds(lambda p, s: _op("remove", f"{p}.{s}"), path, sub),
    )


operations = st.one_of(
    st.builds(_op, writes, st.sampled_from(SIMPLE), text),
    st.builds(lambda p: _op("remove", p), st.sampled_from(SIMPLE[:-1])),  # difference 10
    st.builds(_op, writes, st.just("active"), booleans),
    st.builds(_op, writes, st.just("name"), names),
    st.builds(
        lambda p: _op("remove", p),
        st.sampled_from(
            ["name", "emails", "addresses", "roles", "active", f"{ENTERPRISE}:manager", ENTERPRISE]
        ),
    ),
    st.builds(
        _op, writes, st.just(f"{ENTERPRISE}:manager"), st.fixed_dictionaries({"value": text})
    ),
    st.builds(_op, writes, st.just("emails"), _values(email)),
    st.builds(_op, writes, st.just("addresses"), _values(address)),
    st.builds(_op, st.just("add"), st.just("roles"), _values(role)),
    _filtered("emails", {"value": emails, "display": text, "primary": booleans}),
    _filtered("addresses", {"locality": text, "region": text, "postalCode": text}),
    st.builds(
        _op, st.just("replace"), st.sampled_from([*SIMPLE[:-1], "emails", "name"]), st.none()
    ),
    st.builds(_op, st.just("remove"), st.sampled_from(["emails.display", "addresses.region"])),
    st.builds(_op, writes, st.just("name"), st.fixed_dictionaries({"givenName": st.none()})),
    st.sampled_from(
        [  # failures: both must refuse
            _op("remove", None),
            _op("add", "title"),
            _op("replace", "nickname2", "x"),
            _op("replace", 'emails[display co "q"].value', "a@example.com"),
            _op("replace", "emails[type eq", "x"),
            _op("move", "title", "x"),
            _op("replace", "urn:example:unknown:2.0:User:title", "x"),
        ]
    ),
    st.builds(
        _op,
        writes,
        st.just(None),
        _subset(
            {
                "displayName": text,
                "active": booleans,
                "name.givenName": text,
                "name": names,
                f"{ENTERPRISE}:department": text,
                ENTERPRISE: _subset({"costCenter": text}, 1),
                "emails": _values(email),
            },
            1,
        ),
    ),
)

# --- the two implementations --------------------------------------------------------------------


def _clean(doc: dict[str, Any]) -> dict[str, Any]:
    """Attributes only, without empty containers (RFC 7643 §2.5: unassigned)."""
    out = {}
    for key, value in doc.items():
        if key in ("schemas", "id", "meta"):
            continue
        if isinstance(value, dict):
            value = _clean(value)
        elif isinstance(value, list):  # an emptied value is no value (difference 11)
            value = [v for v in value if v not in (None, {})]
        if value not in (None, [], {}):
            out[key] = value
    return out


def oracle(doc: dict[str, Any], body: dict[str, Any]) -> Any:
    with POLICY:
        user = Model.model_validate({"schemas": [USER_SCHEMA], **doc})
        try:
            patch = PatchOp[Model].model_validate(body, scim_ctx=Context.RESOURCE_PATCH_REQUEST)
            patch.patch(user)
        except (SCIMException, ValidationError):
            return FAILED
        return _clean(user.model_dump())


def ours(doc: dict[str, Any], body: dict[str, Any]) -> Any:
    try:
        return _clean(apply_patch(USER, doc, body).doc)
    except ScimError:
        return FAILED


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=users, ops=st.lists(operations, min_size=1, max_size=4))
def test_patch_agrees_with_scim2_server(doc: dict[str, Any], ops: list[dict[str, Any]]) -> None:
    """RFC 7644 §3.5.2: on RFC-dialect operations (minus the intentional differences of the
    module docstring) we and scim2-server agree on failure and on the resulting resource."""
    body = {"schemas": [PATCH_OP_SCHEMA], "Operations": ops}
    expected = oracle(copy.deepcopy(doc), copy.deepcopy(body))
    event("both failed" if expected == FAILED else "both applied")
    assert ours(doc, body) == expected


# --- groups: membership -------------------------------------------------------------------------

ids = st.sampled_from(["a", "b", "c", "d"])
member_lists = st.lists(ids, unique=True, max_size=3).map(lambda v: [{"value": i} for i in v])
member_ops = st.one_of(
    st.builds(_op, st.sampled_from(["add", "replace"]), st.just("members"), member_lists),
    st.builds(lambda i: _op("remove", f'members[value eq "{i}"]'), ids),
    st.builds(lambda i, j: _op("remove", f'members[value eq "{i}" or value eq "{j}"]'), ids, ids),
    st.just(_op("remove", "members")),
    st.builds(
        _op,
        st.just("replace"),
        st.just(None),
        st.fixed_dictionaries({"displayName": text}, optional={"members": member_lists}),
    ),
)


def _after(current: list[str], change: MemberChange) -> set[str]:
    """The member ids a store holds after applying ``change`` (store.MemberChange's contract)."""
    if change.replace_all is not None:
        return {m.value for m in change.replace_all}
    return (set(current) - set(change.remove)) | {m.value for m in change.add}


@settings(max_examples=200, deadline=None)
@given(
    current=st.lists(ids, unique=True, max_size=4),
    name=text,
    ops=st.lists(member_ops, min_size=1, max_size=4),
)
def test_member_changes_agree_with_scim2_server(
    current: list[str], name: str, ops: list[dict[str, Any]]
) -> None:
    """RFC 7644 §3.5.2 on ``members``: our MemberChange, applied to the stored member rows,
    gives the members scim2-server ends with, and the same displayName."""
    body = {"schemas": [PATCH_OP_SCHEMA], "Operations": ops}
    group = Group.model_validate(
        {"schemas": [GROUP_SCHEMA], "displayName": name, "members": [{"value": i} for i in current]}
    )
    with POLICY:
        patch = PatchOp[Group].model_validate(
            copy.deepcopy(body), scim_ctx=Context.RESOURCE_PATCH_REQUEST
        )
        patch.patch(group)
    result = apply_patch(GROUP, {"id": "g", "displayName": name}, body)
    assert _after(current, result.members) == {m.value for m in group.members or ()}
    assert result.doc["displayName"] == group.display_name
