"""Exports of the whole graph for analysts: GraphML (Gephi, yEd, networkx) and CSV."""

from __future__ import annotations

import csv
from typing import TextIO
from xml.sax.saxutils import quoteattr

from idgraph.store.port import Store

GRAPHML_HEADER = """<?xml version="1.0" encoding="UTF-8"?>
<graphml xmlns="http://graphml.graphdrawing.org/xmlns">
  <key id="kind" for="node" attr.name="kind" attr.type="string"/>
  <key id="value" for="node" attr.name="value" attr.type="string"/>
  <key id="customer" for="node" attr.name="customer_id" attr.type="string"/>
  <key id="accepted" for="edge" attr.name="accepted" attr.type="boolean"/>
  <key id="rule" for="edge" attr.name="rule" attr.type="string"/>
  <key id="source" for="edge" attr.name="source" attr.type="string"/>
  <key id="at" for="edge" attr.name="at" attr.type="string"/>
  <key id="event" for="edge" attr.name="event_id" attr.type="string"/>
  <graph id="idgraph" edgedefault="undirected">
"""


async def write_graphml(store: Store, out: TextIO) -> int:
    """Identity nodes and every link (accepted or not); streamed, never all in memory."""
    out.write(GRAPHML_HEADER)
    written = 0
    async for page in store.iter_nodes():
        for n in page:
            out.write(
                f'    <node id={quoteattr(n.key)}><data key="kind">{_x(n.kind)}</data>'
                f'<data key="value">{_x(n.value)}</data>'
                f'<data key="customer">{_x(n.customer_id)}</data></node>\n'
            )
            written += 1
    async for links in store.iter_links():
        for k in links:
            out.write(
                f"    <edge source={quoteattr(k.a)} target={quoteattr(k.b)}>"
                f'<data key="accepted">{str(k.accepted).lower()}</data>'
                f'<data key="rule">{_x(k.rule or "")}</data>'
                f'<data key="source">{_x(k.source)}</data>'
                f'<data key="at">{k.at.isoformat()}</data>'
                f'<data key="event">{_x(k.event_id)}</data></edge>\n'
            )
    out.write("  </graph>\n</graphml>\n")
    return written


async def write_csv(store: Store, out: TextIO) -> int:
    """One row per identity node: key, kind, value, customer_id."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["key", "kind", "value", "customer_id"])
    written = 0
    async for page in store.iter_nodes():
        writer.writerows((n.key, n.kind, n.value, n.customer_id) for n in page)
        written += len(page)
    return written


def _x(text: str) -> str:
    return quoteattr(text)[1:-1]
