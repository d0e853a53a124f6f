"""One sync run: take the cursor's lease, bring the delta round to its deltaLink page by page
(a checkpoint after every page), reconcile, keep the change-notification subscription alive,
then record the run's figures in the state table and log one summary line.

A run never raises for the trouble an operator must fix or wait out (settings, credentials,
a 403, throttling, storage busy): it logs one clear line, records the error in the status
record and returns; the SCIM endpoint is unaffected either way. Bugs do raise, after the status
record is written, so the Functions host records a failed invocation.

Paging overlaps I/O: the next page is fetched while the current one is written to the store
(with ``workers`` threads), and the cursor moves only after the page's writes succeeded, so a
run that stops anywhere -- budget, error, a killed host -- resumes with that page next time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from graph_enrich.budget import RUN_BUDGET_SECONDS, Budget
from graph_enrich.config import SyncConfig
from graph_enrich.enricher import Enricher, Outcome
from graph_enrich.enrichment import Change, Policy
from graph_enrich.errors import ConfigurationError, GraphError, ResyncRequired, SyncError
from graph_enrich.graph import REQUEST_TIMEOUT, DeltaPage, GraphClient
from graph_enrich.newcomers import enrich_newcomers
from graph_enrich.reconcile import RECONCILE_EVERY_SECONDS, reconcile
from graph_enrich.state import (
    NOTIFICATIONS,
    STATUS,
    Cursor,
    CursorStore,
    iso,
    parse_iso,
    read_state,
    update_state,
    utc_now,
)
from graph_enrich.subscription import maintain_subscription
from graph_enrich.writeback import write_back
from graph_enrich.writeback_config import WritebackConfig
from graph_enrich.writeback_queue import outbox_producers
from scim_core.errors import ScimError
from scim_core.producers import producers
from scim_core.settings import Settings
from scim_core.store import Store

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

log = logging.getLogger("graph_enrich")

#: The lease outlives the budget by this much, so that a run killed by the host (or a crashed
#: process) blocks the cursor for at most budget + margin.
LEASE_MARGIN_SECONDS = 60.0
#: Full resyncs Graph may demand within one run before the run gives up.
MAX_RESYNCS = 2


@dataclass
class SyncOptions:
    budget_seconds: float = RUN_BUDGET_SECONDS
    workers: int = 8
    """Threads writing one page's users to the store concurrently."""
    reconcile_every: float = RECONCILE_EVERY_SECONDS
    max_rounds: int = 3
    """Delta rounds per run: more than one only when change notifications keep arriving."""
    credential: TokenCredential | None = None
    """None: from the settings (graph_enrich.credentials)."""
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = utc_now
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    reason: str = "timer"


@dataclass
class SyncReport:
    reason: str
    outcome: str = "complete"
    """complete (round at its deltaLink) | partial (resumes next run) | skipped | failed."""
    round: str | None = None
    pages: int = 0
    changes: int = 0
    enriched: int = 0
    unchanged: int = 0
    unmatched: int = 0
    ignored: int = 0
    removed: int = 0
    errors: int = 0
    resyncs: int = 0
    waits: int = 0
    reconciled: int = 0
    reconcile_seconds: float = 0.0
    newcomers: int = 0
    """Users queued by their SCIM create / re-enable and enriched (graph_enrich/newcomers.py)."""
    newcomers_waiting: int = 0
    written_back: int = 0
    """Users whose app data Graph accepted (graph_enrich/writeback.py)."""
    writeback_refused: int = 0
    writeback_waiting: int = 0
    subscription: str | None = None
    storage_requests: int | None = None
    duration: float = 0.0
    error: str | None = None
    error_kind: str | None = None
    warnings: list[str] = field(default_factory=list)

    def fail(self, exc: Exception, kind: str, outcome: str = "failed") -> None:
        self.outcome, self.error, self.error_kind = outcome, str(exc), kind

    def record(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, [])}

    def summary(self) -> str:
        figures = " ".join(
            f"{k}={getattr(self, k)}"
            for k in (
                "round",
                "pages",
                "changes",
                "enriched",
                "unchanged",
                "unmatched",
                "ignored",
                "removed",
                "errors",
                "resyncs",
                "waits",
                "reconciled",
                "newcomers",
                "written_back",
                "writeback_refused",
                "writeback_waiting",
            )
        )
        line = (
            f"graph sync {self.outcome} ({self.reason}): {figures} "
            f"storage_requests={self.storage_requests} duration={self.duration:.1f}s"
        )
        if self.subscription:
            line += f" subscription={self.subscription}"
        if self.error:
            line += f" error[{self.error_kind}]={self.error}"
        return line


def run_sync(settings: Settings, store: Store, options: SyncOptions | None = None) -> SyncReport:
    """One run, from a synchronous caller (the timer function, a background thread)."""
    return asyncio.run(GraphSync(settings, store, options or SyncOptions()).run())


class GraphSync:
    def __init__(self, settings: Settings, store: Store, options: SyncOptions) -> None:
        self.settings = settings
        self.store = store
        self.opts = options
        self.report = SyncReport(options.reason)
        self.budget = Budget(options.budget_seconds, options.clock)
        self.cursors = CursorStore(store, options.now)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._page_seconds = 0.0
        self.writeback = WritebackConfig(())

    async def run(self) -> SyncReport:
        report, before = self.report, _request_count(self.store)
        try:
            config = SyncConfig.from_settings(self.settings)
            self.writeback = WritebackConfig.from_settings(self.settings)
            report.warnings += config.warnings
            cursor = self.cursors.acquire(
                self.owner, self.opts.budget_seconds + LEASE_MARGIN_SECONDS
            )
            if cursor is None:
                report.outcome = "skipped"
                report.error = "another run holds the delta cursor's lease"
                return report
            try:
                await self._locked(config, cursor)
            finally:
                self.cursors.release(cursor)
        except SyncError as exc:
            partial = self.report.pages > 0 and not isinstance(exc, ConfigurationError)
            report.fail(exc, exc.kind, "partial" if partial else "failed")
        except ScimError as exc:  # the store: throttled or unavailable
            report.fail(exc, "storage", "partial" if report.pages else "failed")
        except Exception as exc:  # a bug: recorded as such, then raised for the host's log
            report.fail(exc, "internal")
            raise
        finally:
            report.duration = self.budget.elapsed
            after = _request_count(self.store)
            report.storage_requests = None if after is None or before is None else after - before
            self._finish()
        return report

    async def _locked(self, config: SyncConfig, cursor: Cursor) -> None:
        from graph_enrich.credentials import build_credential

        credential = self.opts.credential or build_credential(self.settings)
        try:
            # The SCIM side's list (function_app): scim_core's and graph_enrich's producers.
            writers = [*producers(self.settings), *outbox_producers(self.settings)]
        except ValueError as exc:  # SCIM_EVENTS; the SCIM side refuses to start on it too
            raise ConfigurationError(str(exc)) from None
        self.writers = writers
        enricher = Enricher(self.store, config, writers)
        with ThreadPoolExecutor(self.opts.workers, thread_name_prefix="graph-enrich") as pool:
            async with GraphClient(config, credential, self.budget, sleep=self.opts.sleep) as graph:
                try:
                    await self._subscription(graph, config)
                    for _ in range(self.opts.max_rounds):
                        round_started = self.opts.now()
                        if not await self._round(graph, config, cursor, enricher, pool):
                            self.report.outcome = "partial"
                            return
                        if not self._notified_since(round_started):
                            break
                        log.info("change notifications arrived during the round: one more")
                    await self._outbox(graph, config, enricher, pool)
                    began = self.budget.elapsed
                    self.report.reconciled = await reconcile(
                        graph,
                        self.store,
                        config,
                        enricher,
                        self.cursors,
                        cursor,
                        self.budget,
                        self.opts.now(),
                        self.opts.reconcile_every,
                    )
                    self.report.reconcile_seconds = self.budget.elapsed - began
                finally:
                    self.report.waits = graph.waits

    async def _outbox(
        self, graph: GraphClient, config: SyncConfig, enricher: Enricher, pool: ThreadPoolExecutor
    ) -> None:
        """The users the SCIM side queued: newcomers to enrich, app data to write back."""
        now = iso(self.opts.now())
        found = await enrich_newcomers(
            graph,
            self.store,
            config,
            enricher,
            self.budget,
            Policy(config, now, snapshot=True),
            pool,
        )
        report = self.report
        report.newcomers, report.newcomers_waiting = found.enriched, found.deferred
        report.errors += found.errors
        if self.writeback.enabled:
            wrote = await write_back(
                graph,
                self.store,
                config,
                self.writeback,
                self.budget,
                now,
                pool,
                self.writers,
            )
            report.written_back, report.writeback_refused = wrote.written, wrote.refused
            report.writeback_waiting = wrote.deferred

    async def _subscription(self, graph: GraphClient, config: SyncConfig) -> None:
        """Subscription upkeep must not cost the delta sync: its trouble is a warning."""
        try:
            self.report.subscription = await maintain_subscription(
                graph, self.store, config, self.opts.now()
            )
        except (ConfigurationError, GraphError) as exc:
            self.report.warnings.append(f"change-notification subscription: {exc}")
            log.warning("graph sync: change-notification subscription: %s", exc)

    async def _round(
        self,
        graph: GraphClient,
        config: SyncConfig,
        cursor: Cursor,
        enricher: Enricher,
        pool: ThreadPoolExecutor,
    ) -> bool:
        """Bring the round to its deltaLink; False when the budget ran out first."""
        if cursor.link is None and cursor.full_round is None:
            cursor.full_round = iso(self.opts.now())
        pending: asyncio.Future[DeltaPage] | None = asyncio.ensure_future(
            graph.delta_page(cursor.link)
        )
        try:
            while pending is not None:
                started = self.budget.elapsed
                try:
                    page = await pending
                except ResyncRequired as exc:
                    self._resync(cursor, exc)
                    pending = asyncio.ensure_future(graph.delta_page(None))
                    continue
                pending = None
                self.report.round = "full" if cursor.full_round else "delta"
                if page.next_link and self._room_for_a_page():
                    # Fetched while this page is written; discarded if the writes fail.
                    pending = asyncio.ensure_future(graph.delta_page(page.next_link))
                await self._apply(page, config, cursor, enricher, pool)
                self._checkpoint(cursor, page)
                took = self.budget.elapsed - started
                self._page_seconds = (
                    took if not self._page_seconds else (0.7 * self._page_seconds + 0.3 * took)
                )
                if page.delta_link:
                    return True
            return False  # no room for another page: the checkpoint holds the nextLink
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
                await asyncio.gather(pending, return_exceptions=True)

    def _room_for_a_page(self) -> bool:
        return self.budget.allows(REQUEST_TIMEOUT + 3 * self._page_seconds)

    def _resync(self, cursor: Cursor, exc: ResyncRequired) -> None:
        self.report.resyncs += 1
        if self.report.resyncs > MAX_RESYNCS:
            raise exc
        log.warning(
            "graph sync: Graph requires a full resync (%s %s): starting a full round",
            exc.status or "",
            exc.code,
        )
        cursor.link, cursor.full_round, cursor.verify = None, iso(self.opts.now()), None
        cursor.round_pages = cursor.round_changes = 0
        self.cursors.save(cursor)

    async def _apply(
        self,
        page: DeltaPage,
        config: SyncConfig,
        cursor: Cursor,
        enricher: Enricher,
        pool: ThreadPoolExecutor,
    ) -> None:
        policy = Policy(config, iso(self.opts.now()), cursor.full_round)
        changes: dict[str, Change] = {}
        for item in page.items:
            change = Change.from_graph(item, config)
            if change is not None:
                # "the same item can show up anywhere": the later one is the newer state
                changes.pop(change.object_id, None)
                changes[change.object_id] = change
        loop = asyncio.get_running_loop()
        outcomes = await loop.run_in_executor(
            None,
            lambda: list(pool.map(lambda change: enricher.apply(change, policy), changes.values())),
        )
        tally = Counter(outcomes)
        report = self.report
        report.pages += 1
        report.changes += len(page.items)
        report.removed += sum(1 for c in changes.values() if c.removed)
        report.enriched += tally[Outcome.ENRICHED]
        report.unchanged += tally[Outcome.UNCHANGED]
        report.unmatched += tally[Outcome.UNMATCHED]
        report.ignored += tally[Outcome.IGNORED]
        report.errors += tally[Outcome.ERROR]

    def _checkpoint(self, cursor: Cursor, page: DeltaPage) -> None:
        cursor.link = page.next_link or page.delta_link
        cursor.round_pages += 1
        cursor.round_changes += len(page.items)
        if page.delta_link:
            if cursor.full_round is not None:
                # Users deleted while we had no valid token never show up as @removed in a
                # full round: the reconciliation pass looks for the ones it did not see.
                cursor.verify, cursor.full_round = cursor.full_round, None
            cursor.round_pages = cursor.round_changes = 0
        self.cursors.save(cursor)

    def _notified_since(self, when: datetime) -> bool:
        requested = parse_iso(read_state(self.store, NOTIFICATIONS).get("requested"))
        return requested is not None and requested > when and self._room_for_a_page()

    def _finish(self) -> None:
        report = self.report
        if report.outcome == "skipped":
            log.info("graph sync skipped (%s): %s", report.reason, report.error)
            return
        now = iso(self.opts.now())

        def change(status: dict[str, Any]) -> dict[str, Any]:
            status["lastRun"] = {"finished": now, **report.record()}
            if report.error is None:
                status["lastSuccess"], status["consecutiveFailures"] = now, 0
            else:
                status["lastError"] = {
                    "at": now,
                    "kind": report.error_kind,
                    "message": report.error,
                }
                status["consecutiveFailures"] = int(status.get("consecutiveFailures", 0)) + 1
            return status

        try:
            update_state(self.store, STATUS, change)
        except ScimError as exc:
            log.warning("graph sync: could not record the run's status: %s", exc)
        level = (
            logging.ERROR
            if report.outcome == "failed"
            else (logging.WARNING if report.error or report.warnings else logging.INFO)
        )
        log.log(level, report.summary())
        for warning in report.warnings:
            log.warning("graph sync: %s", warning)


def _request_count(store: Store) -> int | None:
    count = getattr(store, "request_count", None)
    return count if isinstance(count, int) else None
