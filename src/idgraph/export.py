"""Exports of the whole graph for analysts: GraphML (Gephi, yEd, networkx) and CSV.

XML 1.0 cannot carry most control characters, not even as character references, and
stores written by earlier versions may hold some: in GraphML each is written as U+FFFD
(the replacement character), so the file always parses. CSV keeps every character.
"""

from __future__ import annotations

import csv
import re
from typing import TextIO
from xml.sax.saxutils import quoteattr

from idgraph.store.port import Store

# What XML 1.0 refuses: C0 controls but tab, line feed and carriage return; lone
# surrogates; U+FFFE and U+FFFF.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

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
                f'    <node id={_attr(n.key)}><data key="kind">{_x(n.kind)}</data>'
                f'<data key="value">{_x(n.value)}</data>'
                f'<data key="customer">{_x(n.customer_id)}</data></node>\n'
            )
            written += 1
    async for links in store.iter_links():
        for k in links:
            out.write(
                f"    <edge source={_attr(k.a)} target={_attr(k.b)}>"
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


def _attr(text: str) -> str:
    """``text`` as a quoted XML attribute value."""
    return quoteattr(_NOT_XML.sub("\ufffd", text))


def _x(text: str) -> str:
    """``text`` as XML character data."""
    return _attr(text)[1:-1]
