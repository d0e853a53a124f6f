"""Operator-chosen indexes: the user attributes an instance indexes for ``eq`` lookups.

The app setting ``SCIM_INDEXED_ATTRIBUTES`` lists attribute paths, comma-separated, as a filter
would name them (``emails.value``, ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:
User:employeeNumber``). Each becomes a non-unique index of users whose rows the store writes in
the same entity-group transaction as the user (as ``userName``'s and ``externalId``'s), one row
per distinct value: every email of a user, not only the primary. Values are normalised as the
filter matcher compares them (casefolded unless the attribute is ``caseExact``), read by the
matcher's own getter (:func:`scim_core.filter.values_at`), so an index answers ``eq`` exactly
as a scan would (``tests/store/test_planner_diff.py`` checks it on both stores).

Index keys are named ``x:<path>`` (``x:emails.value``, ``x:enterprise.employeenumber``); the
n-th further value of a resource is the key ``x:<path>#n``, stored under the same index.

Changing the setting on an instance with users: run :mod:`scim_core.reindex` once. Until it has
finished, the planner does not use an index the instance has not built
(:class:`IndexReadiness`): such filters are answered by a bounded scan, never wrongly.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scim_core.errors import Conflict, InvalidValue, PreconditionFailed
from scim_core.filter import AttrPath, parse_datetime, values_at
from scim_core.schema import ENTERPRISE_USER_SCHEMA, ResourceType
from scim_core.store import CHANGE_INDEX, Store, stamp

#: The default: every email of a user, and the enterprise employee number.
DEFAULT_INDEXED_ATTRIBUTES = f"emails.value,{ENTERPRISE_USER_SCHEMA}:employeeNumber"
#: Distinct values of one indexed attribute a user may have: each is a row in the user's EGTs,
#: which hold at most 100 operations (a change of n values deletes and creates up to 2n rows).
MAX_INDEXED_VALUES = 20
PREFIX = "x:"


class IndexSettingError(ValueError):
    """``SCIM_INDEXED_ATTRIBUTES`` names something that cannot be indexed."""


@dataclass(frozen=True)
class OperatorIndex:
    """One indexed attribute: its index ``name``, the planner ``key`` of the attribute it
    indexes (:func:`path_key`), and how a value is normalised."""

    name: str
    key: str
    path: AttrPath
    case_exact: bool

    def normalise(self, value: str) -> str:
        return value if self.case_exact else value.casefold()


def path_key(rtype: ResourceType, path: AttrPath) -> str | None:
    """Which attribute a filter path compares, whatever its spelling (letter case, URN
    prefix, ``emails`` for ``emails.value``): ``"<urn>|<attribute>|<sub>"`` lower-cased, or None
    if the type does not define it. Resolved as the matcher resolves paths."""
    found = rtype.resolve(path.urn, path.name, path.sub)
    if found is None and path.urn is None:
        # As the matcher: a bare name not in core is looked up in the extensions, in order.
        found = next(
            (r for s, _ in rtype.extensions if (r := rtype.resolve(s.id, path.name, path.sub))),
            None,
        )
    if found is None:
        return None
    sub = found.sub
    if sub is None and found.attribute.is_complex:
        sub = found.attribute.sub("value")  # RFC 7644 §3.4.2.2: emails eq "x" is emails.value
        if sub is None:
            return None
    return f"{found.urn or ''}|{found.attribute.name}|{sub.name if sub else ''}".lower()


def parse_indexed(text: str, rtype: ResourceType) -> tuple[OperatorIndex, ...]:
    """The indexes a ``SCIM_INDEXED_ATTRIBUTES`` value names (User attributes of type string
    or reference); raises :class:`IndexSettingError` naming the first bad entry."""
    found: dict[str, OperatorIndex] = {}
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        urn, rest = rtype.split_urn(entry)
        name, _, sub = rest.partition(".")
        path = AttrPath(urn, name, sub or None)
        key = path_key(rtype, path)
        _, target = values_at(rtype, path)
        if key is None or target is None:
            raise IndexSettingError(f"SCIM_INDEXED_ATTRIBUTES: {entry!r} is not a User attribute")
        if urn is not None and any(urn == e.id for e in rtype.server_maintained_extensions()):
            # The Graph enrichment writes those (keeping the keys it read): not indexable.
            raise IndexSettingError(
                f"SCIM_INDEXED_ATTRIBUTES: {entry!r} is written by the Graph enrichment, "
                "which does not maintain indexes"
            )
        if target.type not in ("string", "reference"):
            raise IndexSettingError(
                f"SCIM_INDEXED_ATTRIBUTES: {entry!r} is of type {target.type}; only string "
                "attributes are indexed for eq"
            )
        urn_part, attr, sub_part = key.split("|")
        short = urn_part.split(":")[-3] if urn_part else ""
        index_name = PREFIX + ".".join(p for p in (short, attr, sub_part) if p)
        found.setdefault(key, OperatorIndex(index_name, key, path, target.case_exact))
    return tuple(found.values())


def index_keys(
    indexes: Sequence[OperatorIndex], rtype: ResourceType, doc: Mapping[str, object]
) -> dict[str, str | None]:
    """The index keys of ``doc`` for ``indexes``: ``name`` for the first distinct value,
    ``name#n`` for the n-th further one (sorted, so equal value sets give equal keys)."""
    keys: dict[str, str | None] = {}
    for index in indexes:
        getter, _ = values_at(rtype, index.path)
        values = sorted({index.normalise(v) for v in getter(doc) if isinstance(v, str)})
        if len(values) > MAX_INDEXED_VALUES:
            raise InvalidValue(
                f"a user has at most {MAX_INDEXED_VALUES} distinct values of the indexed "
                f"attribute {index.path} (this one has {len(values)})"
            )
        for n, value in enumerate(values):
            keys[index.name if n == 0 else f"{index.name}#{n}"] = value
    return keys


def change_stamp(doc: Mapping[str, Any]) -> str | None:
    """The change-index key of a document: its ``meta.lastModified`` as a
    :func:`~scim_core.store.stamp` (None if absent or not a dateTime). Every writer of a
    document that sets ``meta.lastModified`` writes this key with it."""
    meta = doc.get("meta")
    when = parse_datetime(meta.get("lastModified")) if isinstance(meta, Mapping) else None
    return None if when is None else stamp(when)


#: The state row that lists the operator indexes an instance has built for every user.
BUILT_STATE = "indexes"


class IndexReadiness:
    """Which indexes the planner may use: those the instance has built (state row
    :data:`BUILT_STATE`, written by the reindex): the configured operator indexes and the
    change index (``lm``, :mod:`scim_core.store`). An instance without resources builds them
    all by writing them, so a new instance marks them built on its first check. Checked once
    per process while complete, else again after ``recheck`` seconds."""

    def __init__(
        self,
        store: Store,
        indexes: Iterable[OperatorIndex],
        *,
        recheck: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store, self.indexes = store, tuple(indexes)
        self.names = {i.name for i in self.indexes} | {CHANGE_INDEX}
        self.recheck, self.clock = recheck, clock
        self._ready: set[str] = set()
        self._checked = -1e18

    def ready(self) -> tuple[OperatorIndex, ...]:
        """The operator indexes the planner may use."""
        self._check()
        return tuple(i for i in self.indexes if i.name in self._ready)

    def changes_ready(self) -> bool:
        """Whether the change index covers every resource (so a poll may walk it)."""
        self._check()
        return CHANGE_INDEX in self._ready

    def _check(self) -> None:
        if self._ready == self.names or self.clock() - self._checked < self.recheck:
            return
        self._checked = self.clock()
        built = built_indexes(self.store)
        stale = {n for n in built - self.names if n.startswith(PREFIX)}
        if stale:
            # Indexes this setting no longer names are not maintained from now on: forget
            # them, so that naming one again later needs a reindex first.
            unmark_built(self.store, stale)
            built -= stale
        if not self.names <= built and all(
            next(iter(self.store.scan(rtype, None, 1)), None) is None for rtype in ("User", "Group")
        ):
            mark_built(self.store, self.names)
            built |= self.names
        self._ready = built & self.names


def built_indexes(store: Store) -> set[str]:
    found = store.get_state(BUILT_STATE)
    names = found[0].get("built") if found else None
    return set(names) if isinstance(names, list) else set()


def mark_built(store: Store, names: Iterable[str]) -> None:
    """Adds ``names`` to the built indexes."""
    _update_built(store, lambda current: current | set(names))


def unmark_built(store: Store, names: Iterable[str]) -> None:
    """Removes ``names`` from the built indexes."""
    _update_built(store, lambda current: current - set(names))


def _update_built(store: Store, change: Callable[[set[str]], set[str]]) -> None:
    """A conditional read-modify-write of the state row, retried when another process won."""
    for _ in range(10):
        found = store.get_state(BUILT_STATE)
        current = set(found[0].get("built") or []) if found else set()
        try:
            store.put_state(
                BUILT_STATE, {"built": sorted(change(current))}, found[1] if found else None
            )
            return
        except (Conflict, PreconditionFailed):
            continue
