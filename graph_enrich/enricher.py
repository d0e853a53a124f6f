"""The join of a Graph user to SCIM users, and the write of its enrichment.

Join (GRAPH_JOIN), O(1) per Graph user through the store's indexes, never a scan:
- ``externalId`` (default): SCIM ``externalId`` = the Entra object id (Graph ``id``); one
  ``Store.lookup`` on the externalId index. Entra sends it when the admin maps ``objectId`` to
  ``externalId`` (docs/graph-enrichment.md).
- ``userName``: SCIM ``userName`` = Graph ``userPrincipalName``, case-insensitively (the index
  holds casefolded names, as the SCIM service writes them). A B2B guest is provisioned as
  ``alias@theirdomain``, not under its ``...#EXT#@...`` UPN (graph_enrich/guests.py): for a
  guest UPN the join also tries that stripped form, then the guest's ``mail`` and
  ``otherMails``, one index read each, first hit wins. A removed user comes with its id
  only, so the first enrichment also records ``graph.id.<objectId>`` -> SCIM id in the state
  table, and removals are joined through it.
Only users already in the store are enriched; a Graph user without a SCIM user is "unmatched".

Storage cost of a changed user: lookup + read + conditional replace = 3 requests (the replace
reuses the keys the read saw); a replay that changes nothing stops after the read.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from graph_enrich.config import SyncConfig
from graph_enrich.enrichment import Change, Policy, enrich, extension
from graph_enrich.guests import candidate_user_names, is_guest_upn
from graph_enrich.state import ID_MAP
from scim_core.errors import Conflict, NotFound, PayloadTooLarge, PreconditionFailed
from scim_core.indexes import change_stamp
from scim_core.outbox import ChangeRecord, Producer, rows_for
from scim_core.store import CHANGE_INDEX, Outbox, Store

log = logging.getLogger("graph_enrich")

#: Conditional writes retried when Entra (or another run) changed the user in between.
MAX_WRITE_ATTEMPTS = 5


def enrichment_rows(
    producers: Sequence[Producer], scim_id: str, before: dict[str, Any], after: dict[str, Any]
) -> list[Outbox]:
    """The outbox rows of a write the Graph timer makes to a user."""
    record = ChangeRecord("User", scim_id, "patch", before, after, origin="enrichment")
    return rows_for(producers, record)


class Outcome(StrEnum):
    ENRICHED = "enriched"
    """At least one SCIM user was written."""
    UNCHANGED = "unchanged"
    """Matched, but the enrichment already said this (a replay)."""
    UNMATCHED = "unmatched"
    """No SCIM user joins this Graph user (not provisioned, or not yet)."""
    IGNORED = "ignored"
    """A removal with GRAPH_DEPROVISION=off."""
    ERROR = "error"
    """The write failed for good (logged); the next change of the user tries again."""


class Enricher:
    def __init__(
        self, store: Store, config: SyncConfig, producers: Sequence[Producer] = ()
    ) -> None:
        self.store = store
        self.config = config
        #: Outbox producers (scim_core/producers.py): an enrichment is a committed change too,
        #: so it writes its event in its own transaction, with origin "enrichment" (which the
        #: write-back producer never queues: graph_enrich/writeback_queue.py, no loop).
        self.producers = list(producers)

    def apply(self, change: Change, policy: Policy) -> Outcome:
        if change.removed is not None and self.config.deprovision == "off":
            return Outcome.IGNORED
        outcomes = [self.apply_to(scim_id, change, policy) for scim_id in self.targets(change)]
        for outcome in (Outcome.ERROR, Outcome.ENRICHED, Outcome.UNCHANGED):
            if outcome in outcomes:
                return outcome
        return Outcome.UNMATCHED

    def targets(self, change: Change) -> list[str]:
        """The SCIM ids this Graph user joins: one index read (two for a userName removal)."""
        if self.config.join == "externalId":
            return self.store.lookup("User", "externalId", change.object_id)
        upn = change.user_principal_name
        if upn is not None:
            found = self.store.lookup("User", "userName", upn.casefold())
            if found:
                return found
            # Guests only (a member's UPN is its userName): the admin may also have mapped
            # originalUserPrincipalName, which the lookup above already covered.
            if is_guest_upn(upn):
                for name in candidate_user_names(upn, change.properties):
                    found = self.store.lookup("User", "userName", name.casefold())
                    if found:
                        return found
        if change.removed is None:
            return []
        record = self.store.get_state(ID_MAP + change.object_id)
        user = record[0].get("user") if record is not None else None
        return [user] if isinstance(user, str) else []

    def apply_to(self, scim_id: str, change: Change, policy: Policy) -> Outcome:
        """Read, enrich, conditionally replace; retried when the user changed in between."""
        for _ in range(MAX_WRITE_ATTEMPTS):
            try:
                stored = self.store.get("User", scim_id)
            except NotFound:
                return Outcome.UNMATCHED
            new = enrich(stored.doc, change, policy)
            if new is None:
                return Outcome.UNCHANGED
            try:
                # The enrichment never changes userName, externalId or an indexed attribute:
                # the keys stay as read, but for the change index (it sets lastModified).
                keys = {**stored.keys, CHANGE_INDEX: change_stamp(new)}
                rows = enrichment_rows(self.producers, scim_id, stored.doc, new)
                self.store.replace("User", new, keys, stored.etag, outbox=rows)
            except PreconditionFailed:
                continue
            except NotFound:
                return Outcome.UNMATCHED  # deprovisioned by Entra meanwhile
            except PayloadTooLarge as exc:
                log.warning(
                    "cannot enrich user %s (Graph %s): %s", scim_id, change.object_id, exc.detail
                )
                return Outcome.ERROR
            old = extension(stored.doc)
            if self.config.join == "userName" and old.get("objectId") != change.object_id:
                self._remember(change.object_id, scim_id)
            return Outcome.ENRICHED
        log.warning(
            "cannot enrich user %s (Graph %s): it kept changing under %d attempts",
            scim_id,
            change.object_id,
            MAX_WRITE_ATTEMPTS,
        )
        return Outcome.ERROR

    def _remember(self, object_id: str, scim_id: str) -> None:
        name = ID_MAP + object_id
        try:
            self.store.put_state(name, {"user": scim_id}, None)  # usually new: one request
        except Conflict:
            found = self.store.get_state(name)
            # A concurrent writer recording the same mapping is as good as our write.
            with contextlib.suppress(Conflict, PreconditionFailed):
                self.store.put_state(name, {"user": scim_id}, None if found is None else found[1])
