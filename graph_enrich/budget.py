"""The time a run may spend, so that it stops cleanly before the Functions host kills it.

host.json sets ``functionTimeout`` to 5 minutes; past it the host aborts the invocation wherever
it is. A run therefore plans with :data:`RUN_BUDGET_SECONDS` and starts no page, retry or
reconciliation step that would not fit; what is left resumes from the checkpoint next time.
``tests/graph/test_config.py`` keeps the budget below host.json's limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

#: 4 of host.json's 5 minutes: a minute of margin for the page in flight, its checkpoint,
#: the status record and a slow storage answer.
RUN_BUDGET_SECONDS = 240.0
#: A run started by a change notification (in the background of the webhook's process) is
#: shorter: it exists to bring a few changes in quickly; the timer does the heavy lifting.
NOTIFIED_BUDGET_SECONDS = 60.0


class Budget:
    """A deadline on a monotonic clock (injectable, so tests need not wait)."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.started = clock()
        self.seconds = seconds

    @property
    def elapsed(self) -> float:
        return self.clock() - self.started

    @property
    def remaining(self) -> float:
        return self.seconds - self.elapsed

    def allows(self, seconds: float) -> bool:
        """Whether ``seconds`` more work still ends inside the budget."""
        return self.remaining > seconds
