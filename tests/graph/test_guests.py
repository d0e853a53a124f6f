"""GRAPH_JOIN=userName and B2B guests (graph_enrich/guests.py).

Microsoft Learn, "How Application Provisioning works in Microsoft Entra ID", B2B (guest) users:
a guest's UPN is ``alias_theirdomain#EXT#@yourdomain``, and Entra strips "#EXT# and your domain"
when provisioning, so the SCIM ``userName`` is ``alias@theirdomain``. The join must find that
user from Graph's side (delta) and Graph's user from the SCIM side (reconciliation).
"""

from __future__ import annotations

import dataclasses
from urllib.parse import unquote

import pytest

from graph_enrich.guests import (
    candidate_user_names,
    guest_upn_prefix,
    odata_string,
    provisioned_user_name,
)
from scim_core.settings import Settings
from tests.graph.conftest import enrichment, provision, sync

GUEST_UPN = "ann.lee_fabrikam.com#EXT#@contoso.onmicrosoft.com"


def _by_name(settings: Settings) -> Settings:
    return Settings.from_env({**settings.as_env(), "GRAPH_JOIN": "userName"})


@pytest.mark.parametrize(
    ("upn", "user_name"),
    [
        (GUEST_UPN, "ann.lee@fabrikam.com"),
        ("first_last_fabrikam.co.uk#EXT#@contoso.com", "first_last@fabrikam.co.uk"),
        ("Meg.B_Fabrikam.com#ext#@Contoso.onmicrosoft.com", "Meg.B@Fabrikam.com"),
        ("adele@contoso.com", None),
        ("nounderscore#EXT#@contoso.com", None),
        ("#EXT#@contoso.com", None),
    ],
    ids=["guest", "alias-with-underscore", "case", "member", "no-separator", "empty-alias"],
)
def test_the_provisioned_user_name_of_a_guest_upn(upn: str, user_name: str | None) -> None:
    """The last ``_`` before #EXT# stood for ``@``: a DNS domain holds no ``_``, an alias may."""
    assert provisioned_user_name(upn) == user_name


@pytest.mark.parametrize(
    ("user_name", "prefix"),
    [
        ("ann.lee@fabrikam.com", "ann.lee_fabrikam.com#EXT#@"),
        ("o'neil@fabrikam.com", "o'neil_fabrikam.com#EXT#@"),
        ("not-an-address", None),
    ],
    ids=["guest", "quote", "no-at"],
)
def test_the_upn_prefix_of_a_provisioned_guest(user_name: str, prefix: str | None) -> None:
    assert guest_upn_prefix(user_name) == prefix


def test_odata_string_literals_double_quotes() -> None:
    """OData ABNF: a single quote inside a string literal is written twice."""
    assert odata_string("o'neil_x#EXT#@") == "'o''neil_x#EXT#@'"


def test_candidates_are_stripped_upn_then_mail_then_other_mails_without_repeats() -> None:
    props = {"mail": "Ann.Lee@fabrikam.com", "otherMails": ["ann@fabrikam.net", "ANN.LEE@x.org"]}
    assert candidate_user_names(GUEST_UPN, props) == [
        "ann.lee@fabrikam.com",
        "ann@fabrikam.net",
        "ANN.LEE@x.org",
    ]


def test_a_guest_provisioned_with_the_stripped_user_name_is_enriched(
    fake, settings, store, options
):
    """Entra's default mapping (userPrincipalName -> userName) provisions the guest as
    alias@theirdomain; delta carries the #EXT# UPN. The join finds the user, and a later
    removal (which carries only the object id) finds it through the recorded id."""
    by_name = _by_name(settings)
    object_id = fake.put_user(
        userPrincipalName=GUEST_UPN,
        mail="ann.lee@fabrikam.com",
        accountEnabled=True,
        jobTitle="Partner",
        userType="Guest",
    )
    scim_id = provision(store, "ann.lee@fabrikam.com")  # as Entra sends it: no externalId
    report = sync(by_name, store, options)
    assert (report.enriched, report.unmatched) == (1, 0)
    ext = enrichment(store, scim_id)
    assert ext["objectId"] == object_id and ext["jobTitle"] == "Partner"
    assert ext["userPrincipalName"] == GUEST_UPN
    fake.delete_user(object_id)
    report = sync(by_name, store, options)
    assert report.enriched == 1 and enrichment(store, scim_id)["removedReason"] == "changed"


def test_a_guest_is_also_found_through_its_mail_addresses(fake, settings, store, options):
    """When the stripped UPN is not the userName (e.g. the admin mapped mail -> userName), the
    guest's mail and otherMails are tried; GRAPH_JOIN=userName selects both."""
    by_name = _by_name(settings)
    fake.put_user(
        userPrincipalName="x_partner.example#EXT#@contoso.onmicrosoft.com",
        mail="someone@partner.example",
        otherMails=["Sam.Other@partner.example"],
        accountEnabled=True,
    )
    scim_id = provision(store, "sam.other@partner.example")
    report = sync(by_name, store, options)
    assert report.enriched == 1 and enrichment(store, scim_id)["otherMails"] == [
        "Sam.Other@partner.example"
    ]
    select = fake.requests[0].query["select"].split(",")
    assert {"mail", "otherMails"} <= set(select)


def test_a_member_is_never_joined_through_its_mail(fake, settings, store, options):
    """The extra candidates are for guest UPNs only: a member whose UPN has no SCIM user stays
    unmatched even when another SCIM user carries its mail address as userName."""
    by_name = _by_name(settings)
    fake.put_user(userPrincipalName="adele@contoso.com", mail="shared@contoso.com")
    other = provision(store, "shared@contoso.com")
    report = sync(by_name, store, options)
    assert (report.enriched, report.unmatched) == (0, 1)
    assert enrichment(store, other) == {}


def test_the_reconciliation_pass_finds_a_guest_by_its_upn_prefix(fake, settings, store, options):
    """A guest provisioned after delta saw it: GET /users/alias@theirdomain is a 404 (that is
    not the guest's UPN), so the pass asks for the UPN that starts with
    alias_theirdomain#EXT#@ (one list request, "List users" with $filter startswith)."""
    by_name = _by_name(settings)
    boss = fake.put_user(userPrincipalName="boss@contoso.com", accountEnabled=True)
    object_id = fake.put_user(
        userPrincipalName="o'neil_fabrikam.com#EXT#@contoso.onmicrosoft.com",
        accountEnabled=True,
        jobTitle="Auditor",
        manager=boss,
    )
    assert sync(by_name, store, options).unmatched == 2
    scim_id = provision(store, "o'neil@fabrikam.com")
    fake.requests.clear()
    report = sync(by_name, store, dataclasses.replace(options, reconcile_every=0))
    assert report.reconciled == 1
    ext = enrichment(store, scim_id)
    assert ext["objectId"] == object_id and ext["jobTitle"] == "Auditor"
    assert ext["managerId"] == boss
    (listed,) = [r for r in fake.requests if r.path == "/v1.0/users"]
    assert unquote(listed.query["filter"]) == (
        "startswith(userPrincipalName,'o''neil_fabrikam.com#EXT#@')"
    )


def test_an_unknown_user_name_costs_one_more_request_and_stays_missing(
    fake, settings, store, options
):
    """No guest has the prefix: the user is recorded as missing (asked again after a day)."""
    by_name = _by_name(settings)
    sync(by_name, store, options)
    provision(store, "nobody@nowhere.example")
    fake.requests.clear()
    report = sync(by_name, store, dataclasses.replace(options, reconcile_every=0))
    assert report.reconciled == 0
    paths = [r.path for r in fake.requests if r.path.startswith("/v1.0/users")]
    assert paths.count("/v1.0/users") == 1
