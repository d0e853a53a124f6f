"""The few statistics the benchmark reports: medians and nearest-rank percentiles."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import TypeVar

T = TypeVar("T")


def median(values: Iterable[float]) -> float:
    data = list(values)
    return statistics.median(data) if data else math.nan


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in 0..100): a value that was actually observed."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50/p95/p99 in milliseconds."""
    return {f"p{p}_ms": round(percentile(seconds, p) * 1000, 3) for p in (50, 95, 99)}


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def rotated(items: Sequence[T], shift: int) -> list[T]:
    """``items`` starting at ``shift`` (mod its length): the order in which one call of each
    size is made, rotated call after call so that no size is always first or last after a
    switch between operations."""
    k = shift % len(items) if items else 0
    return [*items[k:], *items[:k]]
