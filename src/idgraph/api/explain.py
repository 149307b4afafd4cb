"""``explainLink``: the shortest chain of accepted links between two identity nodes, or
what keeps them apart. A node that consent hides for the request's purpose is answered
as if it were not in the graph, after the same work (:meth:`Privacy.visible`); a hidden
node on the path, or at an end of a refused link, is shown as null. The reason names
the arguments (`a`, `b`), never a key."""

from __future__ import annotations

from idgraph.api.privacy import Privacy, shows
from idgraph.api.types import Customer, Link, LinkExplanation, LinkHop, LinkVerdict
from idgraph.domain.consent import ConsentView
from idgraph.domain.split import link_path
from idgraph.service import IdentityGraph


async def explain_link(graph: IdentityGraph, privacy: Privacy, a: str, b: str) -> LinkExplanation:
    """Explain how the identity nodes with keys ``a`` and ``b`` relate."""
    ids = await privacy.visible([a, b])
    found = await graph.store.customers(sorted(set(ids.values())))
    customer_a = Customer.from_record(found[ids[a]]) if a in ids else None
    customer_b = Customer.from_record(found[ids[b]]) if b in ids else None
    result = LinkExplanation(
        a=a,
        b=b,
        verdict=LinkVerdict.UNKNOWN_IDENTIFIER,
        linked=False,
        reason="",
        path=[],
        rejected_links=[],
        customer_a=customer_a,
        customer_b=customer_b,
    )
    if a not in ids or b not in ids:
        unknown = [side for side, key in (("a", a), ("b", b)) if key not in ids]
        result.reason = (
            f"`{unknown[0]}` is not in the graph"
            if len(unknown) == 1
            else "neither `a` nor `b` is in the graph"
        )
        return result
    if ids[a] == ids[b]:
        result.verdict, result.linked = LinkVerdict.LINKED, True
        result.path = await _path(graph, await privacy.view(ids[a]), ids[a], a, b)
        hops = len(result.path)
        result.reason = f"same customer {ids[a]}, {hops} accepted link{'s' * (hops != 1)} apart"
        return result
    result.verdict = LinkVerdict.DIFFERENT_CUSTOMERS
    result.rejected_links = await _refused_between(graph, ids[a], ids[b])
    rules = sorted({_rule_text(link) for link in result.rejected_links})
    result.reason = f"different customers {ids[a]} and {ids[b]}" + (
        f"; rules refused {len(result.rejected_links)} link(s) between them: {', '.join(rules)}"
        if rules
        else "; no evidence links them"
    )
    return result


def _rule_text(link: Link) -> str:
    """The rule as idgraph records it, e.g. ``limit:user_id``."""
    if link.rule is None:
        return "?"
    return f"{link.rule.value}:{link.limit_kind}" if link.limit_kind else f"{link.rule.value}"


async def _path(
    graph: IdentityGraph, view: ConsentView, customer_id: str, a: str, b: str
) -> list[LinkHop]:
    if a == b:
        return []
    component = await graph.store.component(customer_id)
    return [
        LinkHop(
            from_=start if shows(view, start) else None,
            to=end if shows(view, end) else None,
            source=link.source,
            at=link.at,
            event_id=link.event_id,
        )
        for start, end, link in link_path(component, a, b)
    ]


async def _refused_between(graph: IdentityGraph, first: str, second: str) -> list[Link]:
    store = graph.store
    nodes = await store.nodes_of([first, second])
    keys_first = {n.key for n in nodes[first]}
    keys_second = {n.key for n in nodes[second]}
    return [
        Link.from_record(link)
        for link in await store.links_of(sorted(keys_first))
        if not link.accepted
        and ({link.a, link.b} & keys_first)
        and ({link.a, link.b} & keys_second)
    ]
