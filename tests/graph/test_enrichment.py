"""The join and what the enrichment records: properties, manager, removals, GRAPH_DEPROVISION
(Microsoft Learn, "user: delta": ``@removed`` reasons; "Use delta query ...": ``manager``)."""

from __future__ import annotations

import pytest

from scim_core.settings import Settings
from tests.graph.conftest import enrichment, provision, sync


def _user(fake, store, upn="adele@contoso.com", provisioned=True, **props):
    object_id = fake.put_user(
        userPrincipalName=upn, accountEnabled=True, jobTitle="Engineer", **props
    )
    scim_id = provision(store, upn, object_id) if provisioned else None
    return object_id, scim_id


def _with(settings: Settings, **values: str) -> Settings:
    return Settings.from_env({**settings.as_env(), **values})


def test_a_graph_user_without_a_scim_user_is_a_join_miss(fake, settings, store, options):
    """Only provisioned users are enriched; others are counted unmatched and nothing is
    written, not even for a SCIM user whose externalId is a different object id."""
    _user(fake, store, "ghost@contoso.com", provisioned=False)
    other = provision(store, "other@contoso.com", "11111111-2222-3333-4444-555555555555")
    report = sync(settings, store, options)
    assert (report.changes, report.enriched, report.unmatched) == (1, 0, 1)
    assert enrichment(store, other) == {}


def test_properties_are_stored_under_the_extension_only(fake, settings, store, options):
    """The enrichment never overwrites what Entra provisions: the core and enterprise
    attributes stay as Entra sent them, even where Graph says otherwise."""
    object_id = fake.put_user(
        userPrincipalName="adele@contoso.com",
        accountEnabled=True,
        displayName="Adele Vance (Graph)",
        department="Retail",
        businessPhones=["+1 425 555 0109"],
        mobilePhone=None,
    )
    scim_id = provision(
        store,
        "adele@contoso.com",
        object_id,
        displayName="Adele V.",
        **{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Sales"}},
    )
    sync(settings, store, options)
    doc = store.get("User", scim_id).doc
    assert doc["displayName"] == "Adele V."
    assert doc["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"] == {
        "department": "Sales"
    }
    ext = enrichment(store, scim_id)
    assert ext["displayName"] == "Adele Vance (Graph)" and ext["department"] == "Retail"
    assert ext["businessPhones"] == ["+1 425 555 0109"] and "mobilePhone" not in ext
    assert doc["meta"]["lastModified"] == ext["syncedDateTime"]


def test_a_cleared_property_is_removed(fake, settings, store, options):
    """Delta returns a property set to null as ``null``: the enrichment drops it."""
    object_id, scim_id = _user(fake, store, officeLocation="18/2111")
    sync(settings, store, options)
    fake.put_user(object_id, officeLocation=None)
    sync(settings, store, options)
    assert "officeLocation" not in enrichment(store, scim_id)


def test_manager_comes_from_manager_at_delta(fake, settings, store, options):
    """``manager`` is selected (user delta does not support ``$expand``) and arrives as the
    ``manager@delta`` annotation; an entry marked ``@removed`` clears it."""
    boss, _ = _user(fake, store, "boss@contoso.com")
    object_id, scim_id = _user(fake, store)
    fake.put_user(object_id, manager=boss)
    sync(settings, store, options)
    assert enrichment(store, scim_id)["managerId"] == boss
    assert "manager" in fake.requests[0].query["select"].split(",")
    assert "expand" not in fake.requests[0].query
    fake.remove_manager(object_id)
    sync(settings, store, options)
    assert "managerId" not in enrichment(store, scim_id)


@pytest.mark.parametrize(
    ("permanently", "reason"),
    [(False, "changed"), (True, "deleted")],
    ids=["soft-deleted", "permanently-deleted"],
)
def test_removed_users_are_flagged(fake, settings, store, options, permanently, reason):
    """``@removed`` is recorded with its reason; GRAPH_DEPROVISION=flag (the default) marks
    the user deprovisioned and leaves ``active`` to Entra."""
    object_id, scim_id = _user(fake, store)
    sync(settings, store, options)
    fake.delete_user(object_id, permanently=permanently)
    report = sync(settings, store, options)
    assert (report.removed, report.enriched) == (1, 1)
    ext = enrichment(store, scim_id)
    assert ext["removedReason"] == reason and ext["deprovisioned"] is True
    assert ext["removedDateTime"] and ext["jobTitle"] == "Engineer"  # last known data kept
    assert store.get("User", scim_id).doc["active"] is True


def test_a_restored_user_is_no_longer_flagged(fake, settings, store, options):
    """A user restored from deleted items comes back without annotation."""
    object_id, scim_id = _user(fake, store)
    sync(settings, store, options)
    fake.delete_user(object_id)
    sync(settings, store, options)
    fake.put_user(object_id)
    sync(settings, store, options)
    ext = enrichment(store, scim_id)
    assert "removedReason" not in ext and ext["deprovisioned"] is False


def test_a_disabled_account_is_flagged(fake, settings, store, options):
    """accountEnabled=false is recorded and counts as deprovisioned."""
    object_id, scim_id = _user(fake, store)
    fake.put_user(object_id, accountEnabled=False)
    sync(settings, store, options)
    ext = enrichment(store, scim_id)
    assert ext["accountEnabled"] is False and ext["deprovisioned"] is True


def test_disable_mode_sets_active_false_and_undoes_only_its_own(fake, settings, store, options):
    """GRAPH_DEPROVISION=disable closes Entra's gap (unassigned users are disabled at most,
    deleted users linger): a removed or disabled user gets active=false. When the user comes
    back, the sync re-enables only what it disabled itself."""
    disable = _with(settings, GRAPH_DEPROVISION="disable")
    object_id, scim_id = _user(fake, store)
    sync(disable, store, options)
    fake.delete_user(object_id)
    sync(disable, store, options)
    assert store.get("User", scim_id).doc["active"] is False
    assert enrichment(store, scim_id)["disabledBySync"] is True
    fake.put_user(object_id)
    sync(disable, store, options)
    assert store.get("User", scim_id).doc["active"] is True
    assert "disabledBySync" not in enrichment(store, scim_id)


def test_disable_mode_never_re_enables_a_user_entra_disabled(fake, settings, store, options):
    disable = _with(settings, GRAPH_DEPROVISION="disable")
    object_id, scim_id = _user(fake, store)
    stored = store.get("User", scim_id)
    store.replace("User", {**stored.doc, "active": False}, stored.keys, stored.etag)
    fake.put_user(object_id, accountEnabled=False)
    sync(disable, store, options)
    fake.put_user(object_id, accountEnabled=True)
    sync(disable, store, options)
    assert store.get("User", scim_id).doc["active"] is False


def test_off_mode_ignores_removals(fake, settings, store, options):
    off = _with(settings, GRAPH_DEPROVISION="off")
    object_id, scim_id = _user(fake, store)
    sync(off, store, options)
    fake.delete_user(object_id)
    report = sync(off, store, options)
    assert (report.removed, report.ignored, report.enriched) == (1, 1, 0)
    assert "removedReason" not in enrichment(store, scim_id)
    assert "deprovisioned" not in enrichment(store, scim_id)


def test_join_by_user_name_is_case_insensitive(fake, settings, store, options):
    """GRAPH_JOIN=userName: userPrincipalName matches userName whatever the case (the index
    holds casefolded names), also for a guest provisioned under its full UPN (the admin mapped
    originalUserPrincipalName; the stripped form is tests/graph/test_guests.py); removals
    (which carry only the id) are joined through the id recorded at the first enrichment."""
    by_name = _with(settings, GRAPH_JOIN="userName")
    upn = "Meg.B_fabrikam.com#EXT#@Contoso.onmicrosoft.com"
    object_id = fake.put_user(userPrincipalName=upn, accountEnabled=True, jobTitle="Guest")
    scim_id = provision(store, upn.lower())  # no externalId at all
    report = sync(by_name, store, options)
    assert report.enriched == 1 and enrichment(store, scim_id)["objectId"] == object_id
    fake.delete_user(object_id)
    report = sync(by_name, store, options)
    assert report.enriched == 1 and enrichment(store, scim_id)["removedReason"] == "changed"


def test_the_select_list_is_configurable(fake, settings, store, options, caplog):
    """GRAPH_SELECT replaces the default list; id, userPrincipalName and accountEnabled are
    always selected; a name the schema does not hold is dropped with a warning."""
    custom = _with(settings, GRAPH_SELECT="city, jobTitle,shoeSize")
    object_id, scim_id = _user(fake, store, city="Redmond", department="R&D")
    with caplog.at_level("WARNING", logger="graph_enrich"):
        report = sync(custom, store, options)
    select = fake.requests[0].query["select"].split(",")
    assert select == ["id", "userPrincipalName", "accountEnabled", "city", "jobTitle"]
    ext = enrichment(store, scim_id)
    assert ext["city"] == "Redmond" and "department" not in ext and "managerId" not in ext
    assert any("shoeSize" in w for w in report.warnings)
    assert any("shoeSize" in r.getMessage() for r in caplog.records)
