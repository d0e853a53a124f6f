"""The reconciliation pass: users provisioned after their Graph change was seen, and users
deleted while the delta token was expired (graph_enrich/reconcile.py)."""

from __future__ import annotations

import dataclasses

from graph_enrich.state import RECONCILE
from tests.graph.conftest import enrichment, provision, sync


def test_a_user_provisioned_after_its_change_was_seen_is_enriched_later(
    fake, settings, store, options
):
    """Delta saw the user before Entra provisioned it (unmatched then); assignment to the app
    changes nothing in Graph, so no later delta item will carry it. The reconciliation pass
    finds the SCIM user without enrichment and reads it from Graph by its externalId."""
    boss = fake.put_user(userPrincipalName="boss@contoso.com", accountEnabled=True)
    object_id = fake.put_user(
        userPrincipalName="late@contoso.com", accountEnabled=True, jobTitle="Analyst", manager=boss
    )
    first = sync(settings, store, options)
    assert first.unmatched == 2
    scim_id = provision(store, "late@contoso.com", object_id)
    due = dataclasses.replace(options, reconcile_every=0)
    fake.requests.clear()
    report = sync(settings, store, due)
    assert report.changes == 0 and report.reconciled == 1
    ext = enrichment(store, scim_id)
    assert ext["jobTitle"] == "Analyst" and ext["managerId"] == boss
    gets = [r for r in fake.requests if r.path == f"/v1.0/users/{object_id}"]
    assert len(gets) == 1 and gets[0].query["expand"] == "manager($select=id)"


def test_the_pass_runs_at_most_once_per_interval(fake, settings, store, options):
    """Listing the SCIM users costs a scan: by default once an hour, not every run."""
    object_id = fake.put_user(userPrincipalName="late@contoso.com", accountEnabled=True)
    sync(settings, store, options)  # the first run reconciles (never done before)
    scim_id = provision(store, "late@contoso.com", object_id)
    assert sync(settings, store, options).reconciled == 0
    assert enrichment(store, scim_id) == {}
    assert sync(settings, store, dataclasses.replace(options, reconcile_every=0)).reconciled == 1


def test_users_graph_does_not_know_are_not_asked_about_every_time(fake, settings, store, options):
    """A SCIM user whose externalId Graph does not have (404) is remembered and asked about
    again only after a day."""
    scim_id = provision(store, "mailnick", "jdoe")  # externalId not an object id
    due = dataclasses.replace(options, reconcile_every=0)
    sync(settings, store, due)
    assert scim_id in store.get_state(RECONCILE)[0]["missing"]
    fake.requests.clear()
    sync(settings, store, due)
    assert not [r for r in fake.requests if r.path.startswith("/v1.0/users/jdoe")]


def test_users_deleted_while_the_token_was_expired_are_found(fake, settings, store, options):
    """A full round after a resync does not list users deleted in the gap; those the round did
    not see are checked one by one and recorded as removed (deletedItems tells the reason)."""
    kept = fake.put_user(userPrincipalName="kept@contoso.com", accountEnabled=True)
    soft = fake.put_user(userPrincipalName="soft@contoso.com", accountEnabled=True)
    hard = fake.put_user(userPrincipalName="hard@contoso.com", accountEnabled=True)
    ids = {
        o: provision(store, f"{n}@contoso.com", o)
        for o, n in ((kept, "kept"), (soft, "soft"), (hard, "hard"))
    }
    sync(settings, store, options)
    fake.expire_tokens()
    fake.delete_user(soft)
    fake.delete_user(hard, permanently=True)
    report = sync(settings, store, options)
    assert report.resyncs == 1 and report.removed == 0  # the full round does not report them
    assert report.reconciled == 2
    assert enrichment(store, ids[soft])["removedReason"] == "changed"
    assert enrichment(store, ids[hard])["removedReason"] == "deleted"
    assert "removedReason" not in enrichment(store, ids[kept])
