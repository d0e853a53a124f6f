"""Member operations of a group PATCH: members are rows, not document content, so operations on
``members`` compose into one :class:`~scim_core.store.MemberChange` for the store."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from scim_core.errors import InvalidPath
from scim_core.patch.paths import Target, filter_ids
from scim_core.resource import read_members
from scim_core.store import Member, MemberChange


class MemberEdits:
    """Membership changes of a request, composed in order into one :class:`MemberChange`."""

    def __init__(self) -> None:
        self.replace_all: dict[str, Member] | None = None
        self.add: dict[str, Member] = {}
        self.remove: dict[str, None] = {}  # an ordered set

    def added(self, members: Iterable[Member]) -> None:
        for m in members:
            if self.replace_all is not None:
                self.replace_all[m.value] = m
            else:
                self.remove.pop(m.value, None)
                self.add[m.value] = m

    def removed(self, ids: Iterable[str]) -> None:
        for i in ids:
            if self.replace_all is not None:
                self.replace_all.pop(i, None)
            else:
                self.add.pop(i, None)  # added earlier in this request, maybe present before
                self.remove[i] = None

    def replaced(self, members: Iterable[Member]) -> None:
        self.replace_all = {m.value: m for m in members}
        self.add.clear()
        self.remove.clear()

    def change(self) -> MemberChange:
        if self.replace_all is not None:
            return MemberChange(replace_all=tuple(self.replace_all.values()))
        return MemberChange(add=tuple(self.add.values()), remove=tuple(self.remove))


def apply_members(edits: MemberEdits, op: str, t: Target, value: Any) -> None:
    """Members are rows, not document content: record the change (ENTRA.md "PATCH")."""
    if t.sub is not None:
        raise InvalidPath("a member's sub-attributes cannot be patched: add or remove members")
    if t.value_filter is not None:
        if op != "remove":
            raise InvalidPath("add/replace take path 'members' with a list of members")
        edits.removed(filter_ids(t.value_filter))
    elif op == "add":
        edits.added(read_members(value))
    elif op == "replace":  # Entra: "set exactly these"
        edits.replaced(read_members(value) if value is not None else ())
    elif value is None:
        edits.replaced(())  # RFC 7644 §3.5.2.2: remove them all
    else:  # Entra legacy dialect: remove only the listed ids, never the whole group
        edits.removed(m.value for m in read_members(value))
