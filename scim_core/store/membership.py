"""The Table rows of group membership, and the member list a small group keeps inline.

Membership rows live in the groups partition, so one EGT changes a group and its rows:
``m|<groupId>|<memberId>`` (type, display) and its reverse ``r|<memberId>|<groupId>`` (for
``groups_of`` and deletes).

A resource that may be a member has a liveness row ``a|<id>`` in the same partition, and a
birth row ``z|<id>``, both written when it is created. Every EGT that adds a member also merges
into the member's liveness row, which fails unless the row exists; deleting a resource first
deletes its liveness row (keeping the birth row, so it can never be revived), so no member add
can commit after that, and the membership sweep that follows sees every add that did (a group
never lists a deleted member, whatever the interleaving). A resource created before liveness
rows existed gets them on its first add (its document is read, then both rows inserted; the
birth row makes that fail for a resource already deleted).

A group's document entity also says what is known of its members (``Stored.members``): ``mi``,
the members as a JSON list while there are at most INLINE_MEMBERS of them; ``ml`` true when
there are more; neither (or ``mi`` = ``~``) when not known.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from azure.data.tables import UpdateMode

from scim_core.store.batch import Op
from scim_core.store.documents import MAX_ENTITY_BYTES, doc_rk, encode_key, entity_size
from scim_core.store.protocol import Member, MemberChange

INLINE_BYTES = 24_000  # the largest inline member list kept on a group's document entity
LARGE = "large"  # inline state of a group known to have more than INLINE_MEMBERS members
UNKNOWN_MARK = b"~"  # ``mi`` of a group whose inline list was invalidated

Pair = tuple[Op, ...]  # ops that go in the same EGT: a membership's forward and reverse row
# What the store knows of a group's members with its document: the list (at most
# INLINE_MEMBERS), LARGE, or None (not known: read the membership rows).
Inline = list[Member] | str | None


def member_rk(group_id: str, member_id: str) -> str:
    return f"m|{encode_key(group_id)}|{encode_key(member_id)}"


def alive_rk(resource_id: str) -> str:
    return f"a|{encode_key(resource_id)}"


def born_rk(resource_id: str) -> str:
    return f"z|{encode_key(resource_id)}"


def is_alive_check(op: Op) -> bool:
    return op[0] == "update" and str(op[1]["RowKey"]).startswith("a|")


def birth_ops(resource_id: str, rtype: str) -> list[Op]:
    """The liveness and birth rows of a new resource (both fail with 409 if present)."""
    row = {"PartitionKey": "Group", "id": resource_id, "type": rtype}
    alive = {**row, "RowKey": alive_rk(resource_id)}
    return [("create", alive, {}), ("create", {**row, "RowKey": born_rk(resource_id)}, {})]


def death_ops(resource_id: str, rtype: str) -> list[Op]:
    """Deletes the liveness row (gone already for a resource that never had one) and keeps a
    birth row, so that the resource can never be revived."""
    born = {"PartitionKey": "Group", "RowKey": born_rk(resource_id), "id": resource_id}
    return [
        ("delete", {"PartitionKey": "Group", "RowKey": alive_rk(resource_id)}, {}),
        ("upsert", {**born, "type": rtype}, {"mode": UpdateMode.REPLACE}),
    ]


def member_pair(verb: str, group_id: str, member: Member | str) -> Pair:
    member_id = member if isinstance(member, str) else member.value
    forward: dict[str, Any] = {"PartitionKey": "Group", "RowKey": member_rk(group_id, member_id)}
    reverse_rk = f"r|{encode_key(member_id)}|{encode_key(group_id)}"
    reverse: dict[str, Any] = {"PartitionKey": "Group", "RowKey": reverse_rk}
    if isinstance(member, Member):
        forward |= {"group": group_id, "member": member_id, "type": member.type}
        reverse |= {"group": group_id, "member": member_id}
        if member.display is not None:
            forward["display"] = member.display
    options = {"mode": UpdateMode.REPLACE} if verb == "upsert" else {}
    pair: Pair = ((verb, forward, options), (verb, reverse, options))
    if verb == "upsert" and isinstance(member, Member):
        # A merge into the member's liveness row: the EGT fails (404) unless it is alive.
        alive = {
            "PartitionKey": "Group",
            "RowKey": alive_rk(member_id),
            "id": member_id,
            "type": member.type,
        }
        pair = (("update", alive, {"mode": UpdateMode.MERGE}), *pair)
    return pair


def may_be_gone(op: Op) -> bool:
    """Whether ``op`` is one whose row may already be gone: a membership row's delete, or the
    mark of a group's inline members as not known (the group may have been deleted)."""
    if op[0] == "delete":
        return bool(op[1]["RowKey"][:2] in ("m|", "r|", "a|"))
    return op[0] == "update" and op[1].get("mi") == UNKNOWN_MARK


def forget_inline(group_id: str) -> Op:
    """Marks a group's inline members as not known (a merge of one property; the group must
    exist, any version)."""
    entity = {"PartitionKey": "Group", "RowKey": doc_rk(group_id), "mi": UNKNOWN_MARK}
    return ("update", entity, {"mode": UpdateMode.MERGE})


def member_order(member: Member) -> str:
    return encode_key(member.value)  # list_members' order: by membership RowKey


def with_inline(entity: dict[str, Any], inline: Inline) -> tuple[dict[str, Any], Inline]:
    """The document entity with its inline-member properties, and what was kept: a list that
    would not fit (INLINE_BYTES, or the entity's 1 MiB) is not kept."""
    if inline is None:
        return entity, None
    if inline == LARGE:
        return {**entity, "ml": True}, LARGE
    assert isinstance(inline, list)
    data = json.dumps(
        [[m.value, m.type, m.display] for m in inline], separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8", "surrogatepass")
    with_list = {**entity, "mi": data}
    if len(data) > INLINE_BYTES or entity_size(with_list) > MAX_ENTITY_BYTES:
        return entity, None
    return with_list, inline


def inline_of(entity: Mapping[str, Any]) -> Inline:
    if entity.get("ml"):
        return LARGE
    raw = entity.get("mi")
    if not raw or bytes(raw) == UNKNOWN_MARK:
        return None
    return [Member(value, kind, display) for value, kind, display in json.loads(bytes(raw))]


def plan_members(
    group_id: str,
    change: MemberChange,
    inline: Inline,
    list_members: Callable[[str], list[Member]],
) -> tuple[list[Pair], list[Member] | None]:
    """The membership rows to write for ``change``, and the members afterwards when they are
    known. ``list_members`` reads the rows when the change needs them and nothing is inline."""
    after: dict[str, Member] | None = None
    if change.replace_all is not None:
        # O(group size) by nature unless the members are kept inline: the caller asked to
        # replace the whole list.
        target = {m.value: m for m in change.replace_all}
        known = inline if isinstance(inline, list) else list_members(group_id)
        current = {m.value: m for m in known}
        add = [m for m in target.values() if current.get(m.value) != m]
        remove = [member_id for member_id in current if member_id not in target]
        after = target
    else:
        # An id both added and removed ends up removed (MemoryStore applies adds first).
        remove = list(dict.fromkeys(change.remove))
        add = [m for m in {m.value: m for m in change.add}.values() if m.value not in remove]
        if isinstance(inline, list):
            # Known members: write only what changes (Entra re-sends members it added).
            current = {m.value: m for m in inline}
            remove = [member_id for member_id in remove if member_id in current]
            add = [m for m in add if current.get(m.value) != m]
            after = {k: m for k, m in current.items() if k not in remove}
            after.update((m.value, m) for m in add)
    pairs = [member_pair("upsert", group_id, m) for m in add]
    pairs += [member_pair("delete", group_id, m) for m in remove]
    return pairs, None if after is None else list(after.values())
