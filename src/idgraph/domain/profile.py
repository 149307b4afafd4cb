"""Read-time views of a customer: merged traits, the invariant check and its repair."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from idgraph.domain.model import (
    CustomerRecord,
    Link,
    NodeRecord,
    SharedAttachment,
    TraitRecord,
    split_key,
)
from idgraph.domain.rules import Rules


def merge_traits(reports: Iterable[TraitRecord]) -> dict[str, TraitRecord]:
    """Latest report wins per trait name; ties go to the later event id, then node key."""
    merged: dict[str, TraitRecord] = {}
    for report in reports:
        current = merged.get(report.name)
        if current is None or (report.at, report.event_id, report.key) > (
            current.at,
            current.event_id,
            current.key,
        ):
            merged[report.name] = report
    return dict(sorted(merged.items()))


def repair_subject(attachment: SharedAttachment, rules: Rules) -> str:
    """The node a shared attachment is kept on: the one that would have been its event's
    subject — highest priority; ties go to the lowest key, as the event's own order of
    identifiers is not stored."""
    return min(attachment.keys, key=lambda key: (rules.priority(split_key(key)[0]), key))


def find_violations(
    nodes: Iterable[NodeRecord],
    links: Iterable[Link],
    customers: Iterable[CustomerRecord],
    aliases: Mapping[str, str],
    bans: Iterable[tuple[str, str]],
    rules: Rules,
    shared: Iterable[SharedAttachment] = (),
) -> list[str]:
    """Everything that breaks the invariant (docs/concepts.md), as readable sentences.

    Every identity node's customer is exactly its connected component over accepted
    links; no customer breaks a rule; every alias leads to a live customer; an event's
    interaction and consent decision sit on one identity node, its subject (``shared``
    lists those that do not).
    """
    problems: list[str] = []
    customer_of: dict[str, str] = {}
    kinds: dict[str, Counter[str]] = {}
    for node in nodes:
        customer_of[node.key] = node.customer_id
        kinds.setdefault(node.customer_id, Counter())[node.kind] += 1
    parent = {key: key for key in customer_of}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for link in links:
        for end in (link.a, link.b):
            if end not in parent:
                problems.append(f"link {link.a} — {link.b} names a missing node {end}")
                break
        else:
            if link.accepted:
                if customer_of[link.a] != customer_of[link.b]:
                    problems.append(
                        f"accepted link {link.a} — {link.b} joins customers "
                        f"{customer_of[link.a]} and {customer_of[link.b]}"
                    )
                ra, rb = find(link.a), find(link.b)
                if ra != rb:
                    parent[ra] = rb
    components: dict[str, set[str]] = {}
    for key, customer in customer_of.items():
        components.setdefault(find(key), set()).add(customer)
    seen: dict[str, int] = Counter()
    for root, ids in components.items():
        if len(ids) > 1:
            problems.append(f"component of {root} spans customers {', '.join(sorted(ids))}")
        for cid in ids:
            seen[cid] += 1
    for cid, n in seen.items():
        if n > 1:
            problems.append(f"customer {cid} is {n} disconnected components, not one")
    live: set[str] = set()
    for record in customers:
        live.add(record.id)
        counted = kinds.get(record.id, Counter())
        if record.size != sum(counted.values()):
            problems.append(
                f"customer {record.id} records size {record.size}, "
                f"has {sum(counted.values())} nodes"
            )
        if {k: v for k, v in record.kind_counts.items() if v} != dict(counted):
            problems.append(f"customer {record.id} records kind counts that do not match")
        if not counted:
            problems.append(f"customer {record.id} has no identity nodes")
        if record.size > rules.max_size:
            problems.append(f"customer {record.id} has {record.size} nodes > max_size")
        for kind, n in counted.items():
            if n > rules.limit(kind):
                problems.append(f"customer {record.id} has {n} {kind} > limit {rules.limit(kind)}")
    for cid in kinds.keys() - live:
        problems.append(f"nodes point at customer {cid}, which does not exist")
    for alias, cid in aliases.items():
        if cid not in live:
            problems.append(f"alias {alias} leads to {cid}, which is not a live customer")
        if alias in live:
            problems.append(f"alias {alias} is also a live customer id")
    for a, b in bans:
        if a in customer_of and customer_of[a] == customer_of.get(b):
            problems.append(f"banned pair {a} — {b} share customer {customer_of[a]}")
    # Last, so that a graph problem is not hidden behind an old store's many of these.
    problems += [
        (
            f"interaction {a.id} is attached to {len(a.keys)} identity nodes"
            if a.what == "interaction"
            else f"consent decision of event {a.id} is recorded on {len(a.keys)} identity nodes"
        )
        + ", not only on its event's subject (an earlier version's data: run `idgraph repair`)"
        for a in shared
    ]
    return problems
