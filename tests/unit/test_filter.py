"""scim_core.filter: the RFC 7644 §3.4.2.2 filter grammar, PATCH paths (§3.5.2), evaluation, and
the shapes Microsoft Entra sends (ENTRA.md, "Matching queries")."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scim_core.errors import InvalidFilter, InvalidPath
from scim_core.filter import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    AttrPath,
    Compare,
    Not,
    Or,
    PatchPath,
    Present,
    ValuePath,
    compile_filter,
    compile_value_filter,
    matches,
    parse_filter,
    parse_path,
    referenced_paths,
)
from scim_core.schema import ResourceType, Schema, default_resource_types

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE = "urn:ietf:params:scim:schemas:core:2.0:User"
TYPES = default_resource_types()
USER, GROUP = TYPES["User"], TYPES["Group"]


def p(name: str, sub: str | None = None, urn: str | None = None) -> AttrPath:
    return AttrPath(urn, name, sub)


#: RFC 7643 §8.2 "Full User Representation", trimmed, plus the enterprise extension (§8.3).
BJENSEN: dict[str, Any] = {
    "schemas": [CORE, ENTERPRISE],
    "id": "2819c223-7f76-453a-919d-413861904646",
    "externalId": "701984",
    "userName": "bjensen@example.com",
    "name": {
        "formatted": "Ms. Barbara J Jensen, III",
        "familyName": "O'Malley",
        "givenName": "Barbara",
    },
    "displayName": "Babs Jensen",
    "title": "Tour Guide",
    "userType": "Employee",
    "active": True,
    "emails": [
        {"value": "bjensen@example.com", "type": "work", "primary": True},
        {"value": "babs@jensen.org", "type": "home"},
    ],
    "ims": [{"value": "someaimhandle", "type": "aim"}],
    "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAw"}],
    "meta": {
        "resourceType": "User",
        "created": "2010-01-23T04:56:22Z",
        "lastModified": "2011-05-13T04:42:34Z",
    },
    ENTERPRISE: {
        "employeeNumber": "701984",
        "department": "Tour Operations",
        "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"},
    },
}
GROUP_DOC: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
    "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
    "displayName": "Tour Guides",
    "members": [{"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"}],
}


# --- RFC 7644 §3.4.2.2: every example filter of the section, parsed and evaluated -------------

RFC_EXAMPLES = [
    ("userName-eq", 'userName eq "bjensen"', Compare(p("userName"), "eq", "bjensen"), False),
    (
        "familyName-co",
        'name.familyName co "O\'Malley"',
        Compare(p("name", "familyName"), "co", "O'Malley"),
        True,
    ),
    ("userName-sw", 'userName sw "J"', Compare(p("userName"), "sw", "J"), False),
    (
        "urn-userName-sw",
        f'{CORE}:userName sw "J"',
        Compare(p("userName", urn=CORE), "sw", "J"),
        False,
    ),
    ("title-pr", "title pr", Present(p("title")), True),
    *(
        (
            f"lastModified-{op}",
            f'meta.lastModified {op} "2011-05-13T04:42:34Z"',
            Compare(p("meta", "lastModified"), op, "2011-05-13T04:42:34Z"),
            op in ("ge", "le"),
        )
        for op in ("gt", "ge", "lt", "le")
    ),
    (
        "and",
        'title pr and userType eq "Employee"',
        And(Present(p("title")), Compare(p("userType"), "eq", "Employee")),
        True,
    ),
    (
        "or",
        'title pr or userType eq "Intern"',
        Or(Present(p("title")), Compare(p("userType"), "eq", "Intern")),
        True,
    ),
    ("schemas-eq", f'schemas eq "{ENTERPRISE}"', Compare(p("schemas"), "eq", ENTERPRISE), True),
    (
        "grouping",
        'userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")',
        And(
            Compare(p("userType"), "eq", "Employee"),
            Or(
                Compare(p("emails"), "co", "example.com"),
                Compare(p("emails", "value"), "co", "example.org"),
            ),
        ),
        True,
    ),
    (
        "not",
        'userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")',
        And(
            Compare(p("userType"), "ne", "Employee"),
            Not(
                Or(
                    Compare(p("emails"), "co", "example.com"),
                    Compare(p("emails", "value"), "co", "example.org"),
                )
            ),
        ),
        False,
    ),
    (
        "paren-single",
        'userType eq "Employee" and (emails.type eq "work")',
        And(Compare(p("userType"), "eq", "Employee"), Compare(p("emails", "type"), "eq", "work")),
        True,
    ),
    (
        "value-path",
        'userType eq "Employee" and emails[type eq "work" and value co "@example.com"]',
        And(
            Compare(p("userType"), "eq", "Employee"),
            ValuePath(
                p("emails"),
                And(Compare(p("type"), "eq", "work"), Compare(p("value"), "co", "@example.com")),
            ),
        ),
        True,
    ),
    (
        "two-value-paths",
        'emails[type eq "work" and value co "@example.com"] or '
        'ims[type eq "xmpp" and value co "@foo.com"]',
        Or(
            ValuePath(
                p("emails"),
                And(Compare(p("type"), "eq", "work"), Compare(p("value"), "co", "@example.com")),
            ),
            ValuePath(
                p("ims"),
                And(Compare(p("type"), "eq", "xmpp"), Compare(p("value"), "co", "@foo.com")),
            ),
        ),
        True,
    ),
]


@pytest.mark.parametrize(
    ("text", "ast"), [(t, a) for _, t, a, _ in RFC_EXAMPLES], ids=[i for i, *_ in RFC_EXAMPLES]
)
def test_rfc_example_parses(text: str, ast: object) -> None:
    """RFC 7644 §3.4.2.2: each example filter of the section parses to the expected tree."""
    assert parse_filter(text) == ast


@pytest.mark.parametrize(
    ("text", "expected"), [(t, e) for _, t, _, e in RFC_EXAMPLES], ids=[i for i, *_ in RFC_EXAMPLES]
)
def test_rfc_example_evaluates(text: str, expected: bool) -> None:
    """RFC 7644 §3.4.2.2 examples against the RFC 7643 §8.2 user."""
    assert matches(parse_filter(text), BJENSEN, USER) is expected


# --- Entra (ENTRA.md "Matching queries") -------------------------------------------------------

ENTRA = [
    ("userName", 'userName eq "BJensen@Example.com"', BJENSEN, USER, True),
    ("externalId", 'externalId eq "701984"', BJENSEN, USER, True),
    ("email-value", 'emails[type eq "work"].value eq "bjensen@example.com"', BJENSEN, USER, True),
    (
        "email-value-home",
        'emails[type eq "home"].value eq "bjensen@example.com"',
        BJENSEN,
        USER,
        False,
    ),
    ("group-displayName", 'displayName eq "Tour Guides"', GROUP_DOC, GROUP, True),
    (
        "members-eq",
        f'id eq "{GROUP_DOC["id"]}" and members eq "{BJENSEN["id"]}"',
        GROUP_DOC,
        GROUP,
        True,
    ),
    (
        "members-value-path",
        f'id eq "{GROUP_DOC["id"]}" and members[value eq "{BJENSEN["id"]}"]',
        GROUP_DOC,
        GROUP,
        True,
    ),
    (
        "members-absent",
        f'id eq "{GROUP_DOC["id"]}" and members eq "nobody"',
        GROUP_DOC,
        GROUP,
        False,
    ),
    (
        "bare-manager",
        f'id eq "{BJENSEN["id"]}" and manager eq "26118915-6090-4610-87e4-49d8ca9f808d"',
        BJENSEN,
        USER,
        True,
    ),
    (
        "urn-manager-value",
        f'{ENTERPRISE}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d"',
        BJENSEN,
        USER,
        True,
    ),
    ("unquoted-email", "userName eq bjensen@example.com", BJENSEN, USER, True),
    ("unquoted-number", "externalId eq 701984", BJENSEN, USER, True),
    ("unquoted-mixed", "employeeNumber eq 701984", BJENSEN, USER, True),
]


@pytest.mark.parametrize(
    ("text", "doc", "rtype", "expected"), [e[1:] for e in ENTRA], ids=[e[0] for e in ENTRA]
)
def test_entra_shape(text: str, doc: dict[str, Any], rtype: ResourceType, expected: bool) -> None:
    """The matching and reference-check queries Entra sends (ENTRA.md)."""
    assert matches(parse_filter(text), doc, rtype) is expected


def test_value_path_then_sub_attribute_is_a_value_filter() -> None:
    """Entra's ``emails[type eq "work"].value eq "x"`` means one email with both properties."""
    assert parse_filter('emails[type eq "work"].value eq "x"') == ValuePath(
        p("emails"), And(Compare(p("type"), "eq", "work"), Compare(p("value"), "eq", "x"))
    )


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("userName eq john@x.com", "john@x.com"),
        ("externalId eq 123-abc", "123-abc"),
        ("externalId eq 123", 123),
        ("x eq 1.5", 1.5),
        ("x eq -2e3", -2e3),
        ("x eq TRUE", True),
        ("x eq false", False),
        ("x eq null", None),
        ("x eq 0123", "0123"),
    ],
    ids=[
        "email",
        "dashed",
        "int",
        "decimal",
        "exponent",
        "true-any-case",
        "false",
        "null",
        "leading-zero-is-text",
    ],
)
def test_unquoted_literal(text: str, value: object) -> None:
    """Bare words: JSON literals stay typed, anything else is a string (Entra leniency)."""
    node = parse_filter(text)
    assert isinstance(node, Compare)
    assert (node.value, type(node.value)) == (value, type(value))


@pytest.mark.parametrize(
    "text",
    [
        'USERNAME EQ "bjensen@example.com"',
        'userName Eq "BJENSEN@EXAMPLE.COM"',
        'title PR AND NOT (userType EQ "Intern")',
        f'{ENTERPRISE.upper()}:EMPLOYEENUMBER eq "701984"',
        '  userName   eq\t"bjensen@example.com"  ',
        'EMAILS[TYPE eq "WORK"]',
        'meta.LASTMODIFIED eq "2011-05-13T04:42:34Z"',
    ],
    ids=[
        "attr-and-op",
        "value-caseExact-false",
        "keywords",
        "urn-and-attr",
        "whitespace",
        "value-path",
        "sub-attr",
    ],
)
def test_case_insensitive(text: str) -> None:
    """RFC 7644 §3.4.2.2: attribute names and operators are case-insensitive; so are values of
    caseExact=false attributes (RFC 7643 §2.2)."""
    assert matches(parse_filter(text), BJENSEN, USER)


@pytest.mark.parametrize(
    "text",
    [
        'id eq "2819C223-7F76-453A-919D-413861904646"',
        'id sw "2819C"',
        'externalId ne "701984"',
    ],
    ids=["id-eq", "id-sw", "externalId-ne"],
)
def test_case_exact_attributes_compare_exactly(text: str) -> None:
    """``id`` and ``externalId`` are caseExact (RFC 7643 §3.1); a different value never matches."""
    assert not matches(parse_filter(text), BJENSEN, USER)


# --- evaluation semantics ---------------------------------------------------------------------

SEMANTICS = [
    ("ne-missing", 'nickName ne "x"', True),
    ("eq-null-missing", "nickName eq null", True),
    ("ne-null-present", "title ne null", True),
    ("co-null", "title co null", False),
    ("pr-empty-string", "locale pr", False),
    ("pr-empty-list", "phoneNumbers pr", False),
    ("pr-complex", "name pr", True),
    ("pr-complex-all-empty", "addresses pr", False),
    ("pr-sub-multi", "emails.primary pr", True),
    ("multi-any", 'emails.type eq "home"', True),
    ("multi-ne-is-not-eq", 'emails.type ne "home"', False),
    ("complex-multi-implies-value", 'emails eq "babs@jensen.org"', True),
    (
        "complex-single-implies-value",
        f'{ENTERPRISE}:manager eq "26118915-6090-4610-87e4-49d8ca9f808d"',
        True,
    ),
    ("ew", 'displayName ew "JENSEN"', True),
    ("string-gt", 'userName gt "a"', True),
    ("string-lt", 'userName lt "a"', False),
    ("dateTime-offset", 'meta.lastModified eq "2011-05-13T06:42:34+02:00"', True),
    ("dateTime-fraction", 'meta.created lt "2010-01-23T04:56:22.001Z"', True),
    ("boolean", "active eq true", True),
    ("boolean-string", 'active eq "TRUE"', True),
    ("boolean-stored-string", 'emails[primary eq true and type eq "work"]', True),
    ("boolean-co", 'active co "t"', False),
    ("boolean-vs-number", "active eq 1", False),
    ("value-path-single-complex", f'{ENTERPRISE}:manager[displayName sw "john"]', True),
    ("schemas-case-insensitive", f'schemas eq "{ENTERPRISE.upper()}"', True),
    ("precedence-and-over-or", "title pr or entitlements pr and entitlements pr", True),
    ("precedence-not", 'not (title pr) or userType eq "Employee"', True),
]


@pytest.mark.parametrize(
    ("text", "expected"), [s[1:] for s in SEMANTICS], ids=[s[0] for s in SEMANTICS]
)
def test_semantics(text: str, expected: bool) -> None:
    """RFC 7644 §3.4.2.2 / RFC 7643 §2 rules, and the choices the module docstring records."""
    doc = {
        **BJENSEN,
        "locale": "",
        "phoneNumbers": [],
        "addresses": [{"type": ""}],
        "emails": [{**BJENSEN["emails"][0], "primary": "True"}, BJENSEN["emails"][1]],
    }
    assert matches(parse_filter(text), doc, USER) is expected


UNDEFINED = [
    ("value-path-unknown-sub", "emails[nope pr]", False),
    ("unknown-eq", 'nope eq "x"', False),
    ("unknown-pr", "nope pr", False),
    ("unknown-ne", 'nope ne "x"', True),
    ("unknown-urn", "urn:example:Nope:attr pr", False),
    ("unknown-sub", "name.nope pr", False),
]


@pytest.mark.parametrize(
    ("text", "lenient"), [s[1:] for s in UNDEFINED], ids=[s[0] for s in UNDEFINED]
)
def test_undefined_attribute_is_invalid_filter(text: str, lenient: bool) -> None:
    """RFC 7644 §3.4.2.2: a filter over an attribute the resource type does not define is
    ``invalidFilter`` (``PartitionKey ne ""`` must not match every user). A root search's types
    that lack an attribute another type defines (§3.4.3) compile it leniently, as unassigned."""
    with pytest.raises(InvalidFilter, match="not an attribute"):
        matches(parse_filter(text), BJENSEN, USER)
    assert matches(parse_filter(text), BJENSEN, USER, strict=False) is lenient


def test_attribute_keys_match_case_insensitively() -> None:
    """RFC 7643 §2.1: a document written with other casing still matches."""
    doc = {"USERNAME": "x", ENTERPRISE.lower(): {"EmployeeNumber": "7"}}
    assert matches(parse_filter('userName eq "x" and employeeNumber eq "7"'), doc, USER)


NUMBERS = ResourceType(
    "Thing",
    "/Things",
    "",
    Schema.from_dict(
        {
            "id": "urn:example:Thing",
            "attributes": [
                {"name": "count", "type": "integer"},
                {"name": "ratio", "type": "decimal"},
                {"name": "blob", "type": "binary", "caseExact": True},
            ],
        }
    ),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("count gt 2", True),
        ("count eq 3", True),
        ("count le 2.5", False),
        ('count eq "3"', True),
        ("ratio lt 0.75", True),
        ("ratio ge 1", False),
        ('count co "3"', False),
        ("count eq x", False),
        ('blob eq "AAE="', True),
        ('blob eq "aae="', False),
    ],
    ids=[
        "gt",
        "eq",
        "int-vs-decimal",
        "numeric-string",
        "decimal",
        "decimal-ge",
        "co",
        "not-a-number",
        "binary-eq",
        "binary-caseExact",
    ],
)
def test_numbers_and_binary(text: str, expected: bool) -> None:
    """integer/decimal compare numerically; incompatible operands simply do not match."""
    doc = {"count": 3, "ratio": 0.5, "blob": "AAE="}
    assert matches(parse_filter(text), doc, NUMBERS) is expected


@pytest.mark.parametrize(
    ("text", "rtype"),
    [
        ("active gt true", USER),
        ("emails[primary lt false]", USER),
        ('blob ge "AA"', NUMBERS),
        ('meta.lastModified gt "yesterday"', USER),
        ('userName[value eq "x"]', USER),
    ],
    ids=[
        "boolean-gt",
        "boolean-lt-in-value-path",
        "binary-ge",
        "bad-dateTime",
        "value-path-simple",
    ],
)
def test_forbidden_combination_is_invalid_filter(text: str, rtype: ResourceType) -> None:
    """RFC 7644 §3.4.2.2: gt/ge/lt/le on boolean or binary "SHALL cause a failed response" with
    invalidFilter; raised when compiling, so even an empty result set reports it."""
    with pytest.raises(InvalidFilter):
        compile_filter(parse_filter(text), rtype)


def test_value_filter_on_one_element() -> None:
    """PATCH ``emails[type eq "work"]`` (RFC 7644 §3.5.2) tests each element on its own."""
    emails = USER.core.attribute("emails")
    assert emails is not None
    match = compile_value_filter(parse_filter('type eq "work" and primary eq true'), emails, USER)
    assert [match(e) for e in BJENSEN["emails"]] == [True, False]


def test_value_filter_needs_complex_attribute() -> None:
    user_name = USER.core.attribute("userName")
    assert user_name is not None
    with pytest.raises(InvalidFilter):
        compile_value_filter(parse_filter("value pr"), user_name, USER)


# --- syntax errors ----------------------------------------------------------------------------

BAD = [
    ("empty", ""),
    ("blank", "   "),
    ("no-op", "userName"),
    ("no-value", "userName eq"),
    ("unknown-op", 'userName like "x"'),
    ("unterminated", 'userName eq "x'),
    ("bad-escape", r'userName eq "\q"'),
    ("unclosed-paren", "(title pr"),
    ("stray-paren", "title pr)"),
    ("trailing", "title pr title"),
    ("dangling-and", "title pr and"),
    ("not-without-paren", "not title pr"),
    ("nested-value-path", "emails[type[value pr]]"),
    ("unclosed-bracket", 'emails[type eq "work"'),
    ("bad-name", '1st eq "x"'),
    ("empty-urn", ":userName pr"),
    ("value-path-on-sub", "name.givenName[value pr]"),
    ("urn-in-value-path", f"emails[{CORE}:type pr]"),
    ("dotted-in-value-path", "emails[a.b pr]"),
    ("bad-sub-after-bracket", 'emails[type pr].1 eq "x"'),
    ("value-is-paren", "userName eq (x)"),
    ("deep-sub", "name.givenName.x pr"),
    ("pr-with-value", 'title pr "x"'),
    ("too-long", "title pr or " * (MAX_LENGTH // 12) + "title pr"),
    ("too-deep", "(" * (MAX_DEPTH + 1) + "title pr" + ")" * (MAX_DEPTH + 1)),
]


@pytest.mark.parametrize("text", [t for _, t in BAD], ids=[i for i, _ in BAD])
def test_syntax_error_is_invalid_filter(text: str) -> None:
    """RFC 7644 §3.4.2.2 / Table 9: a malformed filter is a 400 invalidFilter, never a 500."""
    with pytest.raises(InvalidFilter) as exc:
        parse_filter(text)
    assert (exc.value.status, exc.value.scim_type) == (400, "invalidFilter")


def test_error_names_the_position() -> None:
    with pytest.raises(InvalidFilter, match="position 16"):
        parse_filter('userName eq "x" userName')


def test_long_flat_chain_does_not_recurse() -> None:
    """A 4 KB chain of ``and`` terms parses and evaluates without hitting the recursion limit."""
    text = " and ".join(["title pr"] * ((MAX_LENGTH - 8) // 13))
    assert matches(parse_filter(text), BJENSEN, USER)


def test_max_depth_is_allowed() -> None:
    text = "(" * MAX_DEPTH + "title pr" + ")" * MAX_DEPTH
    assert parse_filter(text) == Present(p("title"))


# --- PATCH paths (RFC 7644 §3.5.2) ------------------------------------------------------------

PATHS = [
    ("attr", "displayName", PatchPath(p("displayName"))),
    ("sub", "name.givenName", PatchPath(p("name", "givenName"))),
    ("urn", f"{ENTERPRISE}:employeeNumber", PatchPath(p("employeeNumber", urn=ENTERPRISE))),
    ("urn-sub", f"{ENTERPRISE}:manager.value", PatchPath(p("manager", "value", urn=ENTERPRISE))),
    (
        "value-path",
        'members[value eq "2819c223"]',
        PatchPath(p("members"), Compare(p("value"), "eq", "2819c223")),
    ),
    (
        "value-path-sub",
        'emails[type eq "work"].value',
        PatchPath(p("emails"), Compare(p("type"), "eq", "work"), "value"),
    ),
    (
        "rfc-addresses",
        'addresses[type eq "work"].streetAddress',
        PatchPath(p("addresses"), Compare(p("type"), "eq", "work"), "streetAddress"),
    ),
    ("ref", "members.$ref", PatchPath(p("members", "$ref"))),
    (
        "complex-value-filter",
        'emails[type eq "work" and not (primary eq true)]',
        PatchPath(
            p("emails"),
            And(Compare(p("type"), "eq", "work"), Not(Compare(p("primary"), "eq", True))),
        ),
    ),
]


@pytest.mark.parametrize(("text", "path"), [x[1:] for x in PATHS], ids=[x[0] for x in PATHS])
def test_parse_path(text: str, path: PatchPath) -> None:
    """RFC 7644 §3.5.2: PATH = attrPath / valuePath [subAttr]."""
    assert parse_path(text) == path


@pytest.mark.parametrize(
    "text",
    [
        "",
        "name.",
        'emails[type eq "work"',
        'emails[type eq "work"] x',
        "a b",
        'emails[type eq "work"].value.x',
        'userName eq "x"',
    ],
    ids=["empty", "dangling-dot", "unclosed", "trailing", "two-words", "deep-sub", "a-filter"],
)
def test_bad_path_is_invalid_path(text: str) -> None:
    """RFC 7644 §3.5.2: a malformed path is 400 invalidPath."""
    with pytest.raises(InvalidPath):
        parse_path(text)


def test_referenced_paths_are_absolute() -> None:
    f = parse_filter('id eq "g" and members[value eq "u"] or not (name.givenName pr)')
    assert list(referenced_paths(f)) == [p("id"), p("members", "value"), p("name", "givenName")]


# --- robustness -------------------------------------------------------------------------------

TOKENS = st.sampled_from(
    [
        "(",
        ")",
        "[",
        "]",
        '"',
        '"x"',
        r'"\"',
        " ",
        "and",
        "or",
        "not",
        "eq",
        "pr",
        "gt",
        "userName",
        "emails",
        ".value",
        ":",
        "urn:a:b",
        "1",
        "true",
        "null",
        "\\",
        "$ref",
        "name.givenName",
        "\t",
        "-",
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(TOKENS, max_size=25).map("".join)))
def test_parse_raises_only_invalid_filter(text: str) -> None:
    """Whatever a client sends, the parser answers with a tree or InvalidFilter."""
    try:
        f = parse_filter(text)
    except InvalidFilter:
        return
    with contextlib.suppress(InvalidFilter):
        matches(f, BJENSEN, USER)


@settings(max_examples=150, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(TOKENS, max_size=20).map("".join)))
def test_parse_path_raises_only_invalid_path(text: str) -> None:
    with contextlib.suppress(InvalidPath):
        parse_path(text)
