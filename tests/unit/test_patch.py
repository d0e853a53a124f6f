"""scim_core.patch: RFC 7644 §3.5.2 PATCH on every path form, and every Microsoft Entra rule of
ENTRA.md "PATCH: two dialects, both must work" in both dialects: the default ("legacy") one and
the RFC-compliant one selected by ``aadOptscim062020`` (Microsoft Learn, "Known issues and
resolutions with SCIM 2.0 protocol compliance of the Microsoft Entra user provisioning
service")."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim_core.errors import (
    InvalidFilter,
    InvalidPath,
    InvalidSyntax,
    InvalidValue,
    Mutability,
    NoTarget,
    ScimError,
)
from scim_core.patch import PATCH_OP_SCHEMA, PatchResult, apply_patch
from scim_core.schema import ResourceType, Schema, default_resource_types
from scim_core.store import Member, MemberChange

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
TEST_EXT = "urn:example:params:scim:schemas:extension:test:2.0:User"
#: A custom extension exercising the types and mutabilities the standard schemas lack.
_EXTRA = Schema.from_dict(
    {
        "id": TEST_EXT,
        "name": "Test",
        "attributes": [
            {"name": "badge", "type": "integer"},
            {"name": "score", "type": "decimal"},
            {"name": "hired", "type": "dateTime"},
            {"name": "serial", "type": "string", "mutability": "immutable"},
            {"name": "tags", "type": "string", "multiValued": True},
            {
                "name": "badgeHolder",
                "type": "complex",
                "subAttributes": [
                    {"name": "value", "type": "string"},
                    {"name": "issuer", "type": "string", "mutability": "immutable"},
                ],
            },
        ],
    }
)
TYPES = default_resource_types([_EXTRA])
USER, GROUP = TYPES["User"], TYPES["Group"]

#: A user as Entra creates it (ENTRA.md "Create"), stored with id and meta.
BOB: dict[str, Any] = {
    "id": "u1",
    "userName": "bob@contoso.com",
    "externalId": "bob",
    "active": True,
    "name": {"givenName": "Bob", "familyName": "Smith"},
    "emails": [{"value": "bob@contoso.com", "type": "work", "primary": True}],
    "meta": {"resourceType": "User", "created": "2024-01-01T00:00:00Z"},
}
GROUP_DOC: dict[str, Any] = {"id": "g1", "displayName": "Sales", "meta": {"resourceType": "Group"}}


def body(*ops: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(ops)}


def patch(doc: dict[str, Any], *ops: dict[str, Any], rtype: ResourceType = USER) -> PatchResult:
    """Apply ``ops``, checking on the way that the input document is never mutated."""
    before = copy.deepcopy(doc)
    result = apply_patch(rtype, doc, body(*ops))
    assert doc == before
    return result


def op(
    name: str, path: str | None = None, value: Any = ..., *, legacy: bool = False
) -> dict[str, Any]:
    """One operation; ``legacy`` capitalises the op name as Entra's default dialect does."""
    out: dict[str, Any] = {"op": name.capitalize() if legacy else name}
    if path is not None:
        out["path"] = path
    if value is not ...:
        out["value"] = value
    return out


DIALECTS = pytest.mark.parametrize("legacy", [True, False], ids=["legacy", "aadOptscim062020"])


# --- RFC 7644 §3.5.2 examples -------------------------------------------------------------------

BJENSEN_ID = "2819c223-7f76-453a-919d-413861904646"


def test_rfc_3_5_2_1_add_member() -> None:
    """RFC 7644 §3.5.2.1: add a member to a group (read as resource.read_members does)."""
    r = patch(
        GROUP_DOC,
        op(
            "add",
            "members",
            [
                {
                    "display": "Babs Jensen",
                    "value": BJENSEN_ID,
                    "$ref": f"https://example.com/v2/Users/{BJENSEN_ID}",
                }
            ],
        ),
        rtype=GROUP,
    )
    assert r.members == MemberChange(add=(Member(BJENSEN_ID, "User", "Babs Jensen"),))
    assert r.doc == GROUP_DOC
    assert r.changed


def test_rfc_3_5_2_1_add_without_path() -> None:
    """RFC 7644 §3.5.2.1: a path-less add of several attributes (names are case-insensitive,
    RFC 7643 §2.1: "nickname" is nickName); emails are appended."""
    r = patch(
        BOB,
        op(
            "add",
            value={"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"},
        ),
    )
    assert r.doc["nickName"] == "Babs"
    assert r.doc["emails"] == [*BOB["emails"], {"value": "babs@jensen.org", "type": "home"}]


def test_rfc_3_5_2_2_remove_one_member() -> None:
    """RFC 7644 §3.5.2.2: remove the member the filter names."""
    r = patch(GROUP_DOC, op("remove", f'members[value eq "{BJENSEN_ID}"]'), rtype=GROUP)
    assert r.members == MemberChange(remove=(BJENSEN_ID,))


def test_rfc_3_5_2_2_remove_all_members() -> None:
    """RFC 7644 §3.5.2.2: remove without filter or value removes every member."""
    r = patch(GROUP_DOC, op("remove", "members"), rtype=GROUP)
    assert r.members == MemberChange(replace_all=())


def test_rfc_3_5_2_2_remove_then_add_members() -> None:
    """RFC 7644 §3.5.2.2: "remove all members ... and add a list": operations compose in order."""
    r = patch(
        GROUP_DOC,
        op("remove", "members"),
        op("add", "members", [{"value": "a"}, {"value": "b", "type": "Group"}]),
        rtype=GROUP,
    )
    assert r.members == MemberChange(replace_all=(Member("a"), Member("b", "Group")))


def test_rfc_3_5_2_2_remove_filtered_emails() -> None:
    """RFC 7644 §3.5.2.2: remove the values a complex filter selects."""
    doc = {
        **BOB,
        "emails": [
            {"value": "a@example.com", "type": "work"},
            {"value": "b@other.org", "type": "work"},
        ],
    }
    r = patch(doc, op("remove", 'emails[type eq "work" and value ew "example.com"]'))
    assert r.doc["emails"] == [{"value": "b@other.org", "type": "work"}]


def test_rfc_3_5_2_3_replace_all_members() -> None:
    """RFC 7644 §3.5.2.3: replace on members replaces them all."""
    r = patch(GROUP_DOC, op("replace", "members", [{"value": "a"}, {"value": "b"}]), rtype=GROUP)
    assert r.members == MemberChange(replace_all=(Member("a"), Member("b")))


RFC_REPLACE_CASES = [
    pytest.param(
        op(
            "replace",
            'addresses[type eq "work"]',
            {
                "type": "work",
                "streetAddress": "911 Universal City Plaza",
                "locality": "Hollywood",
                "primary": True,
            },
        ),
        [
            {
                "type": "work",
                "streetAddress": "911 Universal City Plaza",
                "locality": "Hollywood",
                "primary": True,
            },
            {"type": "home", "locality": "Eden"},
        ],
        id="3.5.2.3-filtered-value",
    ),
    pytest.param(
        op("replace", 'addresses[type eq "work"].streetAddress', "1010 Broadway Ave"),
        [
            {"type": "work", "streetAddress": "1010 Broadway Ave", "locality": "Hollywood"},
            {"type": "home", "locality": "Eden"},
        ],
        id="3.5.2.3-filtered-sub-attribute",
    ),
    pytest.param(
        op("replace", "addresses", [{"type": "other", "locality": "Mars"}]),
        [{"type": "other", "locality": "Mars"}],
        id="3.5.2.3-multi-valued-all",
    ),
]


@pytest.mark.parametrize(("operation", "addresses"), RFC_REPLACE_CASES)
def test_rfc_3_5_2_3_replace_addresses(operation: dict[str, Any], addresses: list[Any]) -> None:
    """RFC 7644 §3.5.2.3 examples on addresses: a filtered value is merged, a filtered
    sub-attribute set, an unfiltered multi-valued attribute replaced as a whole."""
    doc = {
        **BOB,
        "addresses": [
            {"type": "work", "streetAddress": "1 Main St", "locality": "Hollywood"},
            {"type": "home", "locality": "Eden"},
        ],
    }
    assert patch(doc, operation).doc["addresses"] == addresses


def test_rfc_3_5_2_3_replace_without_path() -> None:
    """RFC 7644 §3.5.2.3: a path-less replace sets the listed attributes, keeps the others."""
    emails = [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ]
    r = patch(BOB, op("replace", value={"emails": emails, "nickname": "Babs"}))
    assert r.doc == {**BOB, "emails": emails, "nickName": "Babs"}


# --- path forms ---------------------------------------------------------------------------------

PATH_FORMS = [
    pytest.param(op("replace", "title", "Boss"), {"title": "Boss"}, id="attr"),
    pytest.param(
        op("replace", "name.givenName", "Rob"),
        {"name": {"givenName": "Rob", "familyName": "Smith"}},
        id="attr.sub",
    ),
    pytest.param(op("replace", f"{CORE}:title", "Boss"), {"title": "Boss"}, id="core-urn:attr"),
    pytest.param(
        op("replace", f"{CORE}:name.familyName", "Jones"),
        {"name": {"givenName": "Bob", "familyName": "Jones"}},
        id="core-urn:attr.sub",
    ),
    pytest.param(
        op("add", f"{ENTERPRISE}:department", "Sales"),
        {ENTERPRISE: {"department": "Sales"}},
        id="ext-urn:attr",
    ),
    pytest.param(
        op("add", f"{ENTERPRISE}:manager.value", "m1"),
        {ENTERPRISE: {"manager": {"value": "m1"}}},
        id="ext-urn:attr.sub",
    ),
    pytest.param(
        op("add", ENTERPRISE, {"department": "Sales", "costCenter": "7"}),
        {ENTERPRISE: {"department": "Sales", "costCenter": "7"}},
        id="ext-urn-alone",
    ),
    pytest.param(
        op("replace", 'emails[type eq "work"]', {"display": "Bob"}),
        {
            "emails": [
                {"value": "bob@contoso.com", "type": "work", "primary": True, "display": "Bob"}
            ]
        },
        id="multi[filter]",
    ),
    pytest.param(
        op("replace", 'emails[type eq "work"].value', "b@c.org"),
        {"emails": [{"value": "b@c.org", "type": "work", "primary": True}]},
        id="multi[filter].sub",
    ),
    pytest.param(
        op("replace", "emails.type", "home"),
        {"emails": [{"value": "bob@contoso.com", "type": "home", "primary": True}]},
        id="multi.sub-every-value",
    ),
    pytest.param(
        op("add", "name", {"middleName": "J"}),
        {"name": {"givenName": "Bob", "familyName": "Smith", "middleName": "J"}},
        id="add-complex-merges",
    ),
    pytest.param(
        op("add", "emails", {"value": "bob@contoso.com", "type": "work", "primary": True}),
        {},
        id="add-identical-value-once",
    ),
    pytest.param(
        op("add", "emails", {"value": "BOB@contoso.com", "type": "Work", "primary": True}),
        {},
        id="add-same-value-caseExact-false",
    ),
    pytest.param(
        op("Remove", "emails", [{"value": "BOB@contoso.com"}]),
        {"emails": None},
        id="legacy-remove-with-value",
    ),
    pytest.param(
        op("Remove", "emails", [{"value": "other@contoso.com"}]),
        {},
        id="legacy-remove-with-other-value",
    ),
    pytest.param(
        op("replace", "name", {"givenName": None}),
        {"name": {"familyName": "Smith"}},
        id="replace-complex-null-sub-unassigns",
    ),
    pytest.param(
        op("remove", "name.givenName"), {"name": {"familyName": "Smith"}}, id="remove-sub"
    ),
    pytest.param(op("remove", "emails"), {"emails": None}, id="remove-multi"),
    pytest.param(
        op("remove", 'emails[type eq "work"].primary'),
        {"emails": [{"value": "bob@contoso.com", "type": "work"}]},
        id="remove-multi[filter].sub",
    ),
    pytest.param(op("remove", 'emails[type eq "home"]'), {}, id="remove-no-match-is-noop"),
    pytest.param(op("replace", "displayName", None), {}, id="replace-null-absent-is-noop"),
    pytest.param(
        op("replace", 'emails[type eq "home"].value', None),
        {},
        id="replace-null-no-match-creates-nothing",
    ),
    pytest.param(op("replace", "externalId", None), {"externalId": None}, id="replace-null"),
]


@pytest.mark.parametrize(("operation", "changes"), PATH_FORMS)
def test_path_forms(operation: dict[str, Any], changes: dict[str, Any]) -> None:
    """RFC 7644 §3.5.2: every path form on add/replace/remove (``None`` = removed)."""
    expected = {k: v for k, v in {**BOB, **changes}.items() if v is not None}
    r = patch(BOB, operation)
    assert r.doc == expected
    assert r.changed == bool(changes)


def test_primary_unmarks_others() -> None:
    """RFC 7644 §3.5.2: a value newly marked primary sets "primary" false on the others."""
    r = patch(BOB, op("add", "emails", [{"value": "new@c.org", "type": "home", "primary": "True"}]))
    assert r.doc["emails"] == [
        {"value": "bob@contoso.com", "type": "work", "primary": False},
        {"value": "new@c.org", "type": "home", "primary": True},
    ]


@pytest.mark.parametrize("verb", ["add", "replace"])
def test_unfiltered_sub_attribute_write(verb: str) -> None:
    """RFC 7644 §3.5.2.1/§3.5.2.3 with ``emails.display``: every value gets it; with no values,
    the target does not exist and is added as one value (scim2-server drops the write)."""
    two = {**BOB, "emails": [{"value": "a@c.org"}, {"value": "b@c.org"}]}
    assert [e["display"] for e in patch(two, op(verb, "emails.display", "x")).doc["emails"]] == [
        "x",
        "x",
    ]
    none = {k: v for k, v in BOB.items() if k != "emails"}
    assert patch(none, op(verb, "emails.display", "x")).doc["emails"] == [{"display": "x"}]


def test_removing_the_last_sub_attribute_drops_the_value() -> None:
    doc = {**BOB, "emails": [{"display": "only"}, {"value": "b@c.org", "display": "b"}]}
    assert patch(doc, op("remove", "emails.display")).doc["emails"] == [{"value": "b@c.org"}]


def test_extension_emptied_is_removed() -> None:
    """RFC 7643 §3: an extension without attributes is absent from the document."""
    doc = {**BOB, ENTERPRISE: {"department": "Sales"}}
    assert ENTERPRISE not in patch(doc, op("remove", f"{ENTERPRISE}:department")).doc
    assert ENTERPRISE not in patch(doc, op("remove", ENTERPRISE)).doc


def test_typed_values_are_coerced() -> None:
    """RFC 7643 §2.3: values are checked and coerced against the schema's types."""
    r = patch(
        BOB,
        op(
            "add",
            value={
                f"{TEST_EXT}:badge": "7",
                f"{TEST_EXT}:score": 1.5,
                f"{TEST_EXT}:hired": "2024-05-01T09:00:00Z",
                f"{TEST_EXT}:tags": ["a", "b"],
            },
        ),
    )
    assert r.doc[TEST_EXT] == {
        "badge": 7,
        "score": 1.5,
        "hired": "2024-05-01T09:00:00Z",
        "tags": ["a", "b"],
    }


def test_unknown_sub_attributes_of_a_complex_value_are_dropped() -> None:
    """ENTRA.md "Create": unknown attributes of known schemas are ignored leniently."""
    r = patch(BOB, op("replace", "name", {"givenName": "Rob", "nickname": "x"}))
    assert r.doc["name"] == {"givenName": "Rob", "familyName": "Smith"}


# --- Entra: ENTRA.md rows in both dialects ------------------------------------------------------


@pytest.mark.parametrize("value", ["False", "false", False], ids=["False", "false", "bool"])
@DIALECTS
def test_entra_disable_user(legacy: bool, value: Any) -> None:
    """ENTRA.md "disable user": legacy sends ``"False"`` (also ``"false"``), the flag a bool."""
    r = patch(BOB, op("replace", "active", value, legacy=legacy))
    assert r.doc["active"] is False
    assert r.changed


@pytest.mark.parametrize("value", ["True", "true", True])
def test_entra_boolean_strings_everywhere(value: Any) -> None:
    """Boolean strings coerce for boolean attributes in any op and any position (Microsoft
    Learn, "Known issues ... SCIM 2.0 protocol compliance")."""
    doc = {**BOB, "active": False}
    assert patch(doc, op("Add", "active", value)).doc["active"] is True
    assert patch(doc, op("Replace", value={"active": value})).doc["active"] is True
    r = patch(doc, op("Replace", 'emails[type eq "work"].primary', value))
    assert r.doc["emails"][0]["primary"] is True


SEVERAL_EXPECTED = {
    **BOB,
    "emails": [{"value": "robert@contoso.com", "type": "work", "primary": True}],
    "name": {"givenName": "Robert", "familyName": "Smith"},
    ENTERPRISE: {"employeeNumber": "42", "manager": {"value": "boss"}},
    "active": False,
}
SEVERAL = {
    "legacy": [
        op("Replace", 'emails[type eq "work"].value', "robert@contoso.com"),
        op("Replace", "name.givenName", "Robert"),
        op("Replace", f"{ENTERPRISE}:employeeNumber", "42"),
        op("Add", f"{ENTERPRISE}:manager", "boss"),
        op("Replace", "active", "False"),
    ],
    "aadOptscim062020": [
        op("replace", 'emails[type eq "work"].value', "robert@contoso.com"),
        op(
            "replace",
            value={
                "name.givenName": "Robert",
                f"{ENTERPRISE}:employeeNumber": "42",
                f"{ENTERPRISE}:manager": "boss",
                "active": False,
            },
        ),
    ],
}


@pytest.mark.parametrize("dialect", list(SEVERAL))
def test_entra_several_attributes(dialect: str) -> None:
    """ENTRA.md "several attributes": one op per path (legacy) and path ops plus a path-less
    replace with dotted and full-URN keys (aadOptscim062020) give the same document."""
    assert patch(BOB, *SEVERAL[dialect]).doc == SEVERAL_EXPECTED


def test_entra_path_less_extension_object_merges() -> None:
    """An extension URN key whose value is an object merges into that extension."""
    doc = {**BOB, ENTERPRISE: {"department": "Sales", "costCenter": "1"}}
    r = patch(doc, op("replace", value={ENTERPRISE: {"costCenter": "2", "division": "EU"}}))
    assert r.doc[ENTERPRISE] == {"department": "Sales", "costCenter": "2", "division": "EU"}


REMOVE_MEMBER = {
    "legacy": op("Remove", "members", [{"value": "u2"}]),
    "aadOptscim062020": op("remove", 'members[value eq "u2"]'),
}


@pytest.mark.parametrize("dialect", list(REMOVE_MEMBER))
def test_entra_remove_member(dialect: str) -> None:
    """ENTRA.md "remove member": both forms remove only u2 (an RFC-literal server that empties
    the group on the legacy form is wrong)."""
    r = patch(GROUP_DOC, REMOVE_MEMBER[dialect], rtype=GROUP)
    assert r.members == MemberChange(remove=("u2",))


@DIALECTS
def test_entra_add_members(legacy: bool) -> None:
    """ENTRA.md "Add members": many members, many ops in one request; type defaults to User."""
    r = patch(
        GROUP_DOC,
        op("add", "members", [{"value": "u1"}, {"value": "u2"}], legacy=legacy),
        op("add", "members", [{"value": "u3"}], legacy=legacy),
        rtype=GROUP,
    )
    assert r.members == MemberChange(add=(Member("u1"), Member("u2"), Member("u3")))


MEMBER_COMPOSITION = [
    pytest.param(
        [op("replace", "members", [{"value": "a"}]), op("add", "members", [{"value": "b"}])],
        MemberChange(replace_all=(Member("a"), Member("b"))),
        id="replace-then-add",
    ),
    pytest.param(
        [
            op("add", "members", [{"value": "a"}, {"value": "b"}]),
            op("remove", 'members[value eq "a"]'),
        ],
        MemberChange(add=(Member("b"),), remove=("a",)),
        id="add-then-remove",
    ),
    pytest.param(
        [op("remove", "members", [{"value": "a"}]), op("add", "members", [{"value": "a"}])],
        MemberChange(add=(Member("a"),)),
        id="remove-then-add",
    ),
    pytest.param(
        [
            op("replace", "members", [{"value": "a"}, {"value": "b"}]),
            op("remove", 'members[value eq "a" or value eq "c"]'),
        ],
        MemberChange(replace_all=(Member("b"),)),
        id="replace-then-remove-or",
    ),
    pytest.param([op("Replace", "members", [])], MemberChange(replace_all=()), id="replace-empty"),
    pytest.param(
        [op("replace", value={"displayName": "Sales", "members": [{"value": "a"}]})],
        MemberChange(replace_all=(Member("a"),)),
        id="path-less-members",
    ),
    pytest.param(
        [op("add", "members", [{"value": "g2", "type": "Group"}])],
        MemberChange(add=(Member("g2", "Group"),)),
        id="member-type-group",
    ),
    pytest.param(
        [op("remove", 'members[value eq "a"].display')], MemberChange(), id="read-only-sub-ignored"
    ),
]


@pytest.mark.parametrize(("ops", "expected"), MEMBER_COMPOSITION)
def test_member_ops_compose(ops: list[dict[str, Any]], expected: MemberChange) -> None:
    """Member ops of one request compose in order; Entra's replace means "set exactly these"
    (ENTRA.md "PATCH"). Members never enter the group document."""
    r = patch(GROUP_DOC, *ops, rtype=GROUP)
    assert r.members == expected
    assert "members" not in r.doc
    assert r.changed == (not expected.empty)


ADDRESS_OPS = ["locality", "region", "postalCode"]


@DIALECTS
def test_entra_filtered_path_creates_one_item(legacy: bool) -> None:
    """ENTRA.md: several ``addresses[type eq "work"].x`` ops into a missing item create ONE
    item with type=work and merge the later ops into it (not noTarget, not one per op)."""
    ops = [
        op(
            "add" if i == 0 else "replace",
            f'addresses[type eq "work"].{sub}',
            sub.upper(),
            legacy=legacy,
        )
        for i, sub in enumerate(ADDRESS_OPS)
    ]
    r = patch(BOB, *ops)
    assert r.doc["addresses"] == [
        {"type": "work", "locality": "LOCALITY", "region": "REGION", "postalCode": "POSTALCODE"}
    ]


def test_entra_filtered_path_creates_email() -> None:
    """ENTRA.md: ``emails[type eq "work"].value`` on a user without a work email creates it."""
    doc = {k: v for k, v in BOB.items() if k != "emails"}
    r = patch(doc, op("Replace", 'emails[type eq "work"].value', "x@c.org"))
    assert r.doc["emails"] == [{"type": "work", "value": "x@c.org"}]


def test_filtered_path_creation_keeps_other_items() -> None:
    """The created item is appended next to the values that did not match."""
    r = patch(BOB, op("add", 'emails[type eq "home" and primary eq false].value', "h@c.org"))
    assert r.doc["emails"] == [
        *BOB["emails"],
        {"type": "home", "primary": False, "value": "h@c.org"},
    ]


MANAGER_FORMS = [
    pytest.param(op("Add", f"{ENTERPRISE}:manager", "m2"), {"value": "m2"}, id="urn-plain-string"),
    pytest.param(
        op("Replace", f"{ENTERPRISE}:manager", "m2"), {"value": "m2"}, id="urn-replace-string"
    ),
    pytest.param(op("Add", "manager", [{"value": "m2"}]), {"value": "m2"}, id="bare-path-list"),
    pytest.param(op("Replace", "manager", {"value": "m2"}), {"value": "m2"}, id="bare-path-object"),
    pytest.param(
        op("replace", value={f"{ENTERPRISE}:manager": "m2"}),
        {"value": "m2"},
        id="path-less-urn-key",
    ),
    pytest.param(op("Replace", f"{ENTERPRISE}:manager", ""), None, id="replace-empty-removes"),
    pytest.param(op("Remove", f"{ENTERPRISE}:manager"), None, id="remove"),
    pytest.param(
        op("Add", f"{ENTERPRISE}:manager", {"value": "m2", "displayName": "Ann"}),
        {"value": "m2"},
        id="read-only-displayName-dropped",
    ),
]


@pytest.mark.parametrize(("operation", "manager"), MANAGER_FORMS)
def test_entra_manager(operation: dict[str, Any], manager: dict[str, Any] | None) -> None:
    """ENTRA.md "Manager": every form Entra sends stores ``{"value": id}``; "" or remove
    clears it (and the emptied extension)."""
    doc = {**BOB, ENTERPRISE: {"manager": {"value": "m1"}}}
    r = patch(doc, operation)
    assert r.doc.get(ENTERPRISE, {}).get("manager") == manager


def test_entra_roles_json_string() -> None:
    """ENTRA.md: roles may arrive as Add with ``[{"value": "<JSON string>"}]``."""
    role = json.dumps({"id": "r1", "displayName": "Admin"})
    r = patch(BOB, op("Add", "roles", [{"value": role, "primary": "True"}]))
    assert r.doc["roles"] == [{"value": role, "primary": True}]


READ_ONLY = [
    pytest.param(op("Replace", "id", "other"), id="id"),
    pytest.param(op("replace", "meta.created", "2000-01-01T00:00:00Z"), id="meta.created"),
    pytest.param(op("replace", "meta", {"resourceType": "Group"}), id="meta"),
    pytest.param(op("Add", "groups", [{"value": "g1"}]), id="groups"),
    pytest.param(
        op("replace", value={"id": "x", "meta": {}, "groups": [], "schemas": [CORE]}),
        id="path-less-keys",
    ),
    pytest.param(op("Add", f"{ENTERPRISE}:manager.displayName", "Ann"), id="manager.displayName"),
    pytest.param(op("replace", "password", "hunter2"), id="write-only-password-not-stored"),
]


@pytest.mark.parametrize("operation", READ_ONLY)
def test_read_only_ignored_silently(operation: dict[str, Any]) -> None:
    """ENTRA.md: read-only attributes in PATCH are ignored silently (RFC 7644 §3.5.2 would
    refuse them); the write-only password is never stored."""
    r = patch(BOB, operation)
    assert r.doc == BOB
    assert not r.changed


def test_immutable_attribute() -> None:
    """RFC 7644 §3.5.2: an immutable attribute may be added once, then not changed (the same
    value again is no change)."""
    r = patch(
        BOB,
        op("add", f"{TEST_EXT}:serial", "S1"),
        op("add", f"{TEST_EXT}:badgeHolder", {"value": "v", "issuer": "I"}),
    )
    assert r.doc[TEST_EXT] == {"serial": "S1", "badgeHolder": {"value": "v", "issuer": "I"}}
    assert patch(r.doc, op("replace", f"{TEST_EXT}:serial", "S1")).changed is False
    assert patch(r.doc, op("replace", f"{TEST_EXT}:badgeHolder.value", "w")).changed
    with pytest.raises(Mutability, match="serial"):
        patch(r.doc, op("replace", f"{TEST_EXT}:serial", "S2"))
    with pytest.raises(Mutability, match="issuer"):
        patch(r.doc, op("replace", f"{TEST_EXT}:badgeHolder.issuer", "J"))
    with pytest.raises(Mutability, match="serial"):
        patch(r.doc, op("remove", TEST_EXT))


def test_no_change_reports_unchanged() -> None:
    """A PATCH that sets what is there already changes nothing (no new version to store)."""
    r = patch(BOB, op("Replace", "active", "True"), op("replace", "name.givenName", "Bob"))
    assert r.doc == BOB
    assert r.changed is False


def test_message_without_schemas_is_accepted() -> None:
    """Lenient: a body without ``schemas`` is taken as a PatchOp; keys are case-insensitive."""
    r = apply_patch(USER, BOB, {"operations": [{"OP": "Replace", "Path": "title", "Value": "X"}]})
    assert r.doc["title"] == "X"


# --- errors -------------------------------------------------------------------------------------

ERRORS = [
    pytest.param([], InvalidSyntax, "Operations", id="no-operations"),
    pytest.param([op("move", "title", "x")], InvalidSyntax, "move", id="unknown-op"),
    pytest.param([{"path": "title", "value": "x"}], InvalidSyntax, "op", id="missing-op"),
    pytest.param(["add"], InvalidSyntax, "object", id="op-not-object"),
    pytest.param([{"op": "add", "path": 5, "value": "x"}], InvalidPath, "string", id="path-type"),
    pytest.param([op("replace", "nonsense", "x")], InvalidPath, "'nonsense'", id="unknown-attr"),
    pytest.param(
        [op("replace", value={"name.nickname": "x"})],
        InvalidPath,
        "'nickname'",
        id="unknown-sub-in-key",
    ),
    pytest.param(
        [op("replace", "urn:example:unknown:2.0:User:title", "x")],
        InvalidPath,
        "unknown schema URN",
        id="unknown-urn",
    ),
    pytest.param(
        [op("replace", value={"urn:example:unknown:2.0:User:title": "x"})],
        InvalidPath,
        "unknown schema URN",
        id="unknown-urn-key",
    ),
    pytest.param(
        [op("replace", 'emails[type eq "work"', "x")], InvalidPath, "']'", id="malformed-path"
    ),
    pytest.param(
        [op("replace", 'name[givenName eq "Bob"]', {})],
        InvalidPath,
        "multi-valued",
        id="filter-on-single-valued",
    ),
    pytest.param([op("remove")], NoTarget, "path", id="remove-without-path"),
    pytest.param(
        [op("replace", 'emails[value co "x"].type', "home")],
        NoTarget,
        "filter",
        id="no-match-not-describable",
    ),
    pytest.param([op("add", "title")], InvalidValue, "value", id="add-without-value"),
    pytest.param([op("replace", "title")], InvalidValue, "value", id="replace-without-value"),
    pytest.param([op("replace", value="x")], InvalidValue, "object", id="path-less-not-object"),
    pytest.param(
        [op("replace", "userName", {"a": 1})], InvalidValue, "string", id="dict-for-string"
    ),
    pytest.param(
        [op("Replace", "active", "maybe")], InvalidValue, "boolean", id="non-boolean-string"
    ),
    pytest.param([op("add", f"{TEST_EXT}:badge", "seven")], InvalidValue, "integer", id="integer"),
    pytest.param(
        [op("add", f"{TEST_EXT}:hired", "yesterday")], InvalidValue, "dateTime", id="dateTime"
    ),
    pytest.param(
        [op("add", "emails", [{"value": "a", "primary": True}, {"value": "b", "primary": True}])],
        InvalidValue,
        "primary",
        id="two-primary",
    ),
    pytest.param([op("remove", "userName")], Mutability, "required", id="remove-required"),
]


@pytest.mark.parametrize(("ops", "error", "detail"), ERRORS)
def test_errors(ops: list[Any], error: type[ScimError], detail: str) -> None:
    """RFC 7644 §3.5.2 / §3.12: each failure is a SCIM error with the right scimType and a
    detail naming what is wrong."""
    with pytest.raises(error, match=detail) as info:
        apply_patch(USER, BOB, {"schemas": [PATCH_OP_SCHEMA], "Operations": ops})
    assert type(info.value) is error


GROUP_ERRORS = [
    pytest.param([op("add", "members", [{"value": ""}])], InvalidValue, id="empty-member-id"),
    pytest.param([op("add", "members", ["u1"])], InvalidValue, id="member-not-object"),
    pytest.param(
        [op("add", "members", [{"value": "u1", "type": "Device"}])], InvalidValue, id="member-type"
    ),
    pytest.param([op("remove", 'members[type eq "User"]')], InvalidFilter, id="member-filter"),
    pytest.param(
        [op("add", 'members[value eq "a"]', {"value": "b"})], InvalidPath, id="add-filtered-members"
    ),
]


@pytest.mark.parametrize(("ops", "error"), GROUP_ERRORS)
def test_group_errors(ops: list[Any], error: type[ScimError]) -> None:
    """Member values must be non-empty string ids; only ``value eq`` member filters apply."""
    with pytest.raises(error):
        apply_patch(GROUP, GROUP_DOC, body(*ops))


def test_wrong_message_schema() -> None:
    """A body that names another message type (a resource sent by mistake) is invalidSyntax."""
    with pytest.raises(InvalidSyntax):
        apply_patch(USER, BOB, {"schemas": [CORE], "Operations": [op("add", "title", "x")]})


def test_error_names_the_operation() -> None:
    """The detail says which operation failed."""
    with pytest.raises(InvalidPath, match=r"Operations\[1\]"):
        patch(BOB, op("add", "title", "x"), op("add", "bogus", "x"))


# --- property: anything in, a result or a ScimError out -----------------------------------------

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_paths = st.sampled_from(
    [
        "title",
        "active",
        "name",
        "name.givenName",
        "emails",
        'emails[type eq "work"]',
        'emails[type eq "work"].value',
        "emails.primary",
        "addresses[type eq work].locality",
        f"{ENTERPRISE}:manager",
        f"{ENTERPRISE}:manager.value",
        ENTERPRISE,
        "manager",
        "members",
        'members[value eq "a"]',
        "id",
        "meta.created",
        "groups",
        "x509Certificates",
        "urn:x:y",
        f"{TEST_EXT}:badge",
        f"{TEST_EXT}:hired",
        "roles[value pr]",
        'emails[not (type eq "x")]',
        "emails[",
        "",
        " ",
        "$ref",
    ]
) | st.text(max_size=12)
_ops = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Add", "replace", "Replace", "remove", "REMOVE", "copy"])},
    optional={"path": _paths | _json, "value": _json},
)
_bodies = (
    st.fixed_dictionaries(
        {"Operations": st.lists(_ops, min_size=1, max_size=4)},
        optional={"schemas": st.just([PATCH_OP_SCHEMA]) | _json},
    )
    | _json
)


@settings(max_examples=300, deadline=None)
@given(body_=_bodies, rtype=st.sampled_from([USER, GROUP]))
def test_any_body_applies_or_raises_scim_error(body_: Any, rtype: ResourceType) -> None:
    """Arbitrary JSON bodies either apply or raise a ScimError subclass (never another
    exception: a 500), and never mutate the stored document."""
    doc = {**BOB, ENTERPRISE: {"manager": {"value": "m"}}} if rtype is USER else GROUP_DOC
    before = copy.deepcopy(doc)
    try:
        result = apply_patch(rtype, doc, body_)
    except ScimError:
        pass
    else:
        json.dumps(result.doc)
        assert isinstance(result.members, MemberChange)
    assert doc == before
