"""GRAPH_WRITEBACK is checked at start-up against what an application may write on /users
(Microsoft Learn, "Update user" and "user resource type"): a wrong mapping is a clear
configuration error naming it, never a 400 from Graph on every run."""

from __future__ import annotations

import json

import pytest

from graph_enrich.errors import ConfigurationError
from graph_enrich.writeback_config import WritebackConfig
from scim_core.settings import Settings

ATTRIBUTES = json.dumps(
    [
        {"name": "phoneNumber", "type": "string"},
        {"name": "phones", "type": "string", "multiValued": True},
        {"name": "badgeId", "type": "string"},
        {"name": "hireDate", "type": "dateTime"},
        {"name": "onSite", "type": "boolean"},
        {"name": "address", "type": "complex", "subAttributes": [{"name": "x", "type": "string"}]},
    ]
)


def config(mapping: str) -> WritebackConfig:
    return WritebackConfig.from_settings(
        Settings.from_env({"SCIM_APP_EXTENSION_ATTRIBUTES": ATTRIBUTES, "GRAPH_WRITEBACK": mapping})
    )


def test_off_by_default() -> None:
    assert not WritebackConfig.from_settings(Settings()).enabled


@pytest.mark.parametrize(
    ("mapping", "graph"),
    [
        ("phoneNumber=businessPhones", "businessPhones"),
        ("phoneNumber=mobilePhone", "mobilePhone"),
        ("badgeId=employeeid", "employeeId"),
        ("hireDate=employeeHireDate", "employeeHireDate"),
        ("badgeId=officeLocation", "officeLocation"),
        ("phones=otherMails", "otherMails"),
        ("badgeId=onPremisesExtensionAttributes.extensionAttribute7", None),
        ("onSite=extension_0123456789abcdef0123456789abcdef_onSite", None),
    ],
    ids=[
        "phone",
        "mobile",
        "badge-any-case",
        "hire-date",
        "office",
        "collection",
        "extension-attribute",
        "directory-extension",
    ],
)
def test_accepted(mapping: str, graph: str | None) -> None:
    (found,) = config(mapping).mappings
    assert found.graph == (graph or mapping.partition("=")[2])


@pytest.mark.parametrize(
    ("mapping", "says"),
    [
        ("badgeId=id", "'id' is read-only"),
        ("badgeId=createdDateTime", "read-only"),
        ("phones=proxyAddresses", "read-only"),
        ("badgeId=onPremisesSamAccountName", "read-only"),
        ("badgeId=userPrincipalName", "Microsoft Entra provisions"),
        ("onSite=accountEnabled", "Microsoft Entra provisions"),
        ("hireDate=birthday", "SharePoint"),
        ("badgeId=badgeNumber", "not a user property an application can write"),
        ("nope=employeeId", "does not declare"),
        ("hireDate=employeeId", "dateTime does not fit"),
        ("badgeId=employeeHireDate", "string does not fit"),
        ("phones=mobilePhone", "holds one value"),
        ("address=streetAddress", "complex"),
        ("badgeId", "not appAttribute=graphProperty"),
        ("badgeId=employeeId,phoneNumber=EMPLOYEEID", "twice"),
        ("badgeId=onPremisesExtensionAttributes.extensionAttribute16", "1 .. 15"),
        ("badgeId=extension_123_x", "not a user property"),
    ],
    ids=[
        "id",
        "created",
        "proxy-addresses",
        "on-premises",
        "upn",
        "account-enabled",
        "sharepoint",
        "unknown",
        "undeclared",
        "date-to-string",
        "string-to-date",
        "many-to-one",
        "complex",
        "malformed",
        "duplicate",
        "extension-attribute-16",
        "bad-directory-extension",
    ],
)
def test_refused(mapping: str, says: str) -> None:
    with pytest.raises(ConfigurationError, match="GRAPH_WRITEBACK") as raised:
        config(mapping)
    assert says in str(raised.value)


def test_patch_body() -> None:
    """Values as Graph takes them: businessPhones holds one number ("user resource type"),
    a bare date gets a time, a removed attribute is cleared (null / empty collection)."""
    mapping = config(
        "phoneNumber=businessPhones,hireDate=employeeHireDate,badgeId=employeeId,"
        "phones=otherMails,onSite=extension_0123456789abcdef0123456789abcdef_onSite"
    )
    app = {"phoneNumber": "+1 555 0100", "hireDate": "2026-01-05", "phones": ["a@x", "b@x"]}
    assert mapping.patch_body(app) == {
        "businessPhones": ["+1 555 0100"],
        "employeeHireDate": "2026-01-05T00:00:00Z",
        "employeeId": None,
        "otherMails": ["a@x", "b@x"],
        "extension_0123456789abcdef0123456789abcdef_onSite": None,
    }
    badge = config("badgeId=onPremisesExtensionAttributes.extensionAttribute1")
    assert badge.patch_body({"badgeId": "B-7"}) == {
        "onPremisesExtensionAttributes": {"extensionAttribute1": "B-7"}
    }
