"""``python -m bench.cost``: the monthly cost of one instance (one customer tenant), computed.

Inputs are of three kinds, kept apart so nobody mistakes one for another:

- MEASURED here (bench/README.md "The app side" and the last full run's part 2): storage
  transactions and execution time per request;
- ASSUMED (stated below): the workload, i.e. churn, poll interval, exports;
- PRICES from Azure's published price pages (cited in bench/README.md, with the date they were
  read and which figures could not be confirmed there).

Nothing here is measured on Azure: the result is arithmetic on the figures above.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- prices (USD, East US, pay as you go; bench/README.md "Cost per tenant" cites them) -------
FLEX_GB_S = 0.000026  # Flex Consumption on demand, execution time per GB-s
FLEX_GB_S_FREE = 100_000  # monthly free grant, GB-s (on demand only)
FLEX_EXECUTIONS_PER_MILLION = 0.40
FLEX_EXECUTIONS_FREE = 250_000
TABLE_PER_10K_TRANSACTIONS = 0.00036  # Table Storage, standard LRS
TABLE_GB_MONTH = 0.045  # Table Storage, standard LRS, stored GB per month

# --- the instance -------------------------------------------------------------------------
INSTANCE_GB = 2.0  # infra/main.bicep instanceMemoryMB default 2048: billed while executing
BYTES_PER_USER = 2_600  # document (~1.8 KB, Entra's shape) + 5 index rows, measured in Azurite

# --- MEASURED (this repo's benchmarks, service level; the HTTP host adds ~1 ms) -------------
#: (storage transactions, execution seconds) per request.
ENTRA_CHANGE = (2.0, 0.006)  # a filter eq (2 tx, 2.4 ms) and a PATCH (2 tx, ~5 ms): per request
POLL_BASE = (2.0, 0.025)  # a meta.lastModified poll: 2 range reads (+1 read per change), p50
POLL_PER_CHANGE = (1.0, 0.0)  # one point read per change returned
EXPORT_PAGE = (1.0, 0.29)  # a cursor page of 1,000 users: 1 request, ~290 ms p50 at 10k
SYNC_RUN = (3.0, 0.05)  # the Graph sync timer with nothing to do: state reads, one delta call

# --- ASSUMED workload (stated in bench/README.md) -------------------------------------------
CYCLES_PER_MONTH = 30 * 24 * 60 // 40  # Entra cycles every 40 min; one without changes is idle
CHURN_PER_DAY = 0.01  # 1% of users change per day (joiners, leavers, attribute changes)
REQUESTS_PER_CHANGE = 2  # Entra: match (GET filter) then write (POST/PATCH/DELETE)
POLLS_PER_MONTH = 30 * 24 * 12  # the app polls every 5 minutes
EXPORTS_PER_MONTH = 30  # and exports everything nightly
SYNC_RUNS_PER_MONTH = 30 * 24 * 4  # SYNC_SCHEDULE default: every 15 minutes


@dataclass
class Month:
    executions: float = 0.0
    transactions: float = 0.0
    gb_seconds: float = 0.0

    def add(self, count: float, per: tuple[float, float]) -> None:
        self.executions += count
        self.transactions += count * per[0]
        self.gb_seconds += count * per[1] * INSTANCE_GB


def month(users: int, *, at_rest: bool = False) -> Month:
    m = Month()
    if at_rest:  # nothing changes, nobody polls: only the sync timer runs
        m.add(SYNC_RUNS_PER_MONTH, SYNC_RUN)
        return m
    changes = users * CHURN_PER_DAY * 30
    m.add(changes * REQUESTS_PER_CHANGE, ENTRA_CHANGE)
    m.add(POLLS_PER_MONTH, POLL_BASE)
    m.transactions += changes * POLL_PER_CHANGE[0]
    m.add(EXPORTS_PER_MONTH * max(1, users // 1000 + 1), EXPORT_PAGE)
    m.add(SYNC_RUNS_PER_MONTH, SYNC_RUN)
    return m


def dollars(m: Month, users: int, *, free_grant: bool) -> dict[str, float]:
    gb_s = max(0.0, m.gb_seconds - (FLEX_GB_S_FREE if free_grant else 0))
    execs = max(0.0, m.executions - (FLEX_EXECUTIONS_FREE if free_grant else 0))
    compute = gb_s * FLEX_GB_S + execs / 1e6 * FLEX_EXECUTIONS_PER_MILLION
    storage = m.transactions / 1e4 * TABLE_PER_10K_TRANSACTIONS
    capacity = users * BYTES_PER_USER / 1e9 * TABLE_GB_MONTH
    return {"compute": compute, "transactions": storage, "capacity": capacity}


def table() -> str:
    rows = [
        "| users | state | executions | storage tx | GB-s | compute $ (no free grant) | "
        "storage tx $ | capacity $ | total $/month (no free grant) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for users in (1_000, 10_000, 100_000):
        for at_rest in (False, True):
            m = month(users, at_rest=at_rest)
            d = dollars(m, users, free_grant=False)
            rows.append(
                f"| {users:,} | {'at rest' if at_rest else 'steady state'} | "
                f"{m.executions:,.0f} | {m.transactions:,.0f} | {m.gb_seconds:,.0f} | "
                f"{d['compute']:.2f} | {d['transactions']:.3f} | {d['capacity']:.3f} | "
                f"{sum(d.values()):.2f} |"
            )
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
