"""The one-shot reindex: after ``SCIM_INDEXED_ATTRIBUTES`` changes on an instance with users.

Run it once the Function App runs with the new setting (every process then writes the new index
rows), against the same storage::

    python -m scim_core.reindex                       # TABLES_CONNECTION_STRING / TABLES_ENDPOINT
    python -m scim_core.reindex --endpoint https://<account>.table.core.windows.net
                                                      # from an operator's machine (az login)

It walks the users, then the groups, in scan order a page at a time and rewrites each resource
whose index keys differ from what the setting gives (the change index ``lm`` included: an instance
upgraded from a version without it needs one run too). The document is unchanged, so
``meta.lastModified`` and change polls are not disturbed; the store's ``replace`` moves the rows in
the resource's own transaction, conditional on the version read, so a concurrent write is never
undone (the resource is read again and compared again). After each page it saves a checkpoint
(state row ``reindex``: the setting's indexes and the last position), so an interrupted run resumes
where it stopped, and a second run over an indexed instance rewrites nothing: resumable and
idempotent. When the walk ends it marks the setting's indexes built (``scim_core.indexes``), and
the planner starts using them (each process re-checks within a minute).

Cost: one scan of the users (1,000 documents a request) plus one transaction per user whose
keys change: at 100k users about 100 reads and 100k writes, a few minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from scim_core.errors import NotFound, PreconditionFailed
from scim_core.indexes import BUILT_STATE, PREFIX, built_indexes, mark_built, unmark_built
from scim_core.service import ScimService
from scim_core.store import Stored

CHECKPOINT = "reindex"
PAGE = 500
RESOURCE_TYPES = ["User", "Group"]


@dataclass
class Report:
    examined: int = 0
    rewritten: int = 0
    resumed_after: str | None = None


def reindex(
    service: ScimService,
    *,
    on_page: Callable[[Report], None] | None = None,
) -> Report:
    """Brings every resource's index rows in line with ``service``'s indexes (users: the
    operator-chosen ones; users and groups: the change index), resuming a run the checkpoint
    says was interrupted; marks the indexes built at the end. ``on_page`` is called after each
    saved checkpoint (progress; tests interrupt the run there)."""
    store = service.store
    names = sorted(service.readiness.names)
    found = store.get_state(CHECKPOINT)
    etag = found[1] if found else None
    resume: dict[str, Any] = {}
    if found and found[0].get("indexes") == names and not found[0].get("done"):
        resume = found[0]
    report = Report(resumed_after=resume.get("after"))
    types = RESOURCE_TYPES[RESOURCE_TYPES.index(resume.get("rtype", "User")) :]
    for rtype in types:
        after = resume.get("after") if rtype == resume.get("rtype") else None
        page: list[Stored] = []
        for stored in store.scan(rtype, after, PAGE):
            page.append(stored)
            if len(page) == PAGE:
                etag = _page(service, rtype, page, names, etag, report, on_page)
                page = []
        etag = _page(service, rtype, page, names, etag, report, on_page)
    stale = {n for n in built_indexes(store) - set(names) if n.startswith(PREFIX)}
    if stale:
        unmark_built(store, stale)
    mark_built(store, names)
    store.put_state(CHECKPOINT, {"indexes": names, "done": True}, etag)
    return report


def _page(
    service: ScimService,
    rtype: str,
    page: list[Stored],
    names: list[str],
    etag: str | None,
    report: Report,
    on_page: Callable[[Report], None] | None,
) -> str | None:
    if not page:
        return etag
    for stored in page:
        report.examined += 1
        report.rewritten += _rewrite(service, rtype, stored)
    checkpoint = {"indexes": names, "rtype": rtype, "after": page[-1].position, "done": False}
    etag = service.store.put_state(CHECKPOINT, checkpoint, etag)
    if on_page is not None:
        on_page(report)
    return etag


def _rewrite(service: ScimService, rtype_name: str, stored: Stored) -> int:
    """1 if the resource's keys had to be rewritten, else 0."""
    rtype = service.types[rtype_name]
    for _ in range(10):
        keys = {k: v for k, v in service.keys(rtype, stored.doc).items() if v is not None}
        if keys == stored.keys:
            return 0
        try:
            service.store.replace(rtype_name, stored.doc, keys, stored.etag)
            return 1
        except PreconditionFailed:
            try:
                stored = service.store.get(rtype_name, stored.id)
            except NotFound:
                return 0  # deleted meanwhile: nothing to index
        except NotFound:
            return 0
    raise RuntimeError(f"{rtype_name} {stored.id} keeps changing; run the reindex again later")


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: builds the store from the app settings in the environment (as the
    Function App does), or from ``--endpoint`` with the operator's Azure CLI login."""
    from scim_core.settings import Settings
    from scim_core.wiring import build_store, operator_store

    parser = argparse.ArgumentParser(prog="python -m scim_core.reindex", description=__doc__)
    parser.add_argument(
        "--endpoint", help="Table service URL; signs in with DefaultAzureCredential"
    )
    args = parser.parse_args(argv)
    settings = Settings.from_env(os.environ)
    store = operator_store(args.endpoint) if args.endpoint else build_store(settings)
    service = ScimService(store, indexed_attributes=settings.indexed_attributes)

    def progress(report: Report) -> None:
        print(f"examined {report.examined}, rewritten {report.rewritten}", file=sys.stderr)

    report = reindex(service, on_page=progress)
    names = ", ".join(sorted(i.name for i in service.indexes)) or "(none)"
    print(f"done: {report.examined} users examined, {report.rewritten} rewritten; built {names}")
    print(f"(state rows {CHECKPOINT!r} and {BUILT_STATE!r})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
