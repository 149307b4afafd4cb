"""Splitting a customer (docs/concepts.md, "Resolution"): recompute its components with networkx.

networkx is imported when a graph is built, not with this module: importing it takes
~150 ms, which every idgraph process paid at start (the ingest's second process, before
it checks the first batch, included) and only a split or a link path uses."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from idgraph.domain.model import Component, Link, SplitPart, SplitPlan
from idgraph.errors import NotFound

if TYPE_CHECKING:
    import networkx as nx


def component_graph(component: Component) -> nx.Graph:
    import networkx as nx

    graph: nx.Graph[str] = nx.Graph()
    graph.add_nodes_from(n.key for n in component.nodes)
    graph.add_edges_from(
        (link.a, link.b, {"link": link}) for link in component.links if link.accepted
    )
    return graph


def link_path(component: Component, a: str, b: str) -> list[tuple[str, str, Link]]:
    """The shortest chain of accepted links from ``a`` to ``b``: ``(from, to, link)``
    hops, in order ("why are these two linked?")."""
    import networkx as nx

    graph = component_graph(component)
    keys = nx.shortest_path(graph, a, b)
    return [(x, y, graph.edges[x, y]["link"]) for x, y in itertools.pairwise(keys)]


def plan_unlink(
    component: Component,
    a: str,
    b: str,
    *,
    ban: bool,
    new_id: Callable[[], str],
    now: datetime,
) -> SplitPlan:
    """Separate ``a`` from ``b`` by rejecting the fewest accepted links that join them
    (the direct link, when that is all there is). The largest part keeps the customer
    id; every other part becomes a new customer that records where it came from."""
    import networkx as nx

    graph = component_graph(component)
    for key in (a, b):
        if key not in graph:
            raise NotFound(f"{key!r} is not in customer {component.customer.id}")
    cut = nx.minimum_edge_cut(graph, a, b) if nx.has_path(graph, a, b) else set()
    graph.remove_edges_from(cut)
    kinds = {n.key: n.kind for n in component.nodes}
    parts = sorted(nx.connected_components(graph), key=lambda p: (-len(p), min(p)))
    return SplitPlan(
        customer_id=component.customer.id,
        rejected_links=sorted((*sorted(edge), "unlink") for edge in cut),
        parts=[
            SplitPart(
                customer_id=component.customer.id if i == 0 else new_id(),
                keys=tuple(sorted(part)),
                kind_counts=dict(Counter(kinds[k] for k in part)),
                is_new=i > 0,
            )
            for i, part in enumerate(parts)
        ],
        at=now,
        ban=tuple(sorted((a, b))) if ban else None,  # type: ignore[arg-type]
    )


def plan_ban_only(component: Component, a: str, b: str, now: datetime) -> SplitPlan:
    """Record a ban between two nodes already in different customers; move nothing."""
    return SplitPlan(
        customer_id=component.customer.id,
        rejected_links=[],
        parts=[
            SplitPart(
                component.customer.id,
                tuple(n.key for n in component.nodes),
                dict(component.customer.kind_counts),
                is_new=False,
            )
        ],
        at=now,
        ban=(min(a, b), max(a, b)),
    )
