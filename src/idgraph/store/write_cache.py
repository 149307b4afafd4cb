"""What the embedded store's write path remembers between batches.

A batch's snapshot (docs/concepts.md, resolution step 2) needs the node id and the customer
state of every identity key the batch mentions. Read from the file, that is a B-tree
probe, a join and a decoded customer row per key, every batch, costlier as the file
grows; yet most keys of a bulk ingest were read or written by an earlier batch. So the
store keeps what it read and what it wrote:

- ``nodes``: key → (node id, the customer id the node had when it was remembered);
- ``customers``: live customer id → (cluster, state);
- ``absorbed``: absorbed customer id → the customer that absorbed it, so a node
  remembered before a merge finds its customer without being touched (a merge moves
  whole customers; nodes are never visited one by one);
- ``linked``: node pairs (``pair_code``) whose link the store wrote as accepted: more
  evidence for an accepted pair changes nothing, so it is not written again (a bulk
  ingest sees most pairs many times);
- ``events``: every event id of the file, kept only when the cache started on a file
  without events (a bulk load into a new file); a batch's ids are then checked here
  instead of in the file (``seen``).

It holds positive facts only: a key it does not know is looked up in the file, unless
the cache holds every node of the file (``holds_every_node``: a bulk ingest into a new
file), when such a key is new. It is honest while the store's connection is the file's
only writer, which the store checks inside every write transaction: SQLite's ``PRAGMA
data_version`` changes when another connection commits (another process, or the
store's own audit connection), and then everything is forgotten. The store's own writes
that split or erase customers forget everything too.

Memory is bounded: past ``max_nodes`` remembered nodes (about 250 bytes each, with
their customers) or accepted pairs (about 80 bytes each) everything is forgotten and
remembering starts again; past ``max_nodes`` event ids (about 100 bytes each) the event
ids alone are forgotten. Customers share their per-kind counts: a few thousand
distinct count maps serve hundreds of thousands of customers (a small dict is ~200
bytes), so the maps are kept once each (``shared_counts``) and never changed in place
(the planner copies what it grows).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from idgraph.domain.model import CustomerState, ResolutionPlan

MAX_NODES = 1_000_000


def pair_code(a: int, b: int) -> int:
    """Node ids ``a`` and ``b`` (a link's ends, in the order the links table keeps
    them) as one int: a set of these is about half the size of a set of tuples."""
    return a << 64 | b


class WriteCache:
    def __init__(self, max_nodes: int = MAX_NODES) -> None:
        self.max_nodes = max_nodes
        self.version: int | None = None
        self.nodes: dict[str, tuple[int, str]] = {}
        self.customers: dict[str, tuple[int, CustomerState]] = {}
        self.absorbed: dict[str, str] = {}
        self.linked: set[int] = set()
        self.events: set[str] | None = None
        self._counts: dict[frozenset[tuple[str, int]], Mapping[str, int]] = {}

    def clear(self) -> None:
        """Forget everything (the next batch reads what it needs from the file)."""
        self.version = None
        self.nodes = {}
        self.customers = {}
        self.absorbed = {}
        self.linked = set()
        self.events = None
        self._counts = {}

    def shared_counts(self, counts: Mapping[str, int]) -> Mapping[str, int]:
        """One read-only map per distinct set of per-kind counts."""
        items = frozenset(counts.items())
        shared = self._counts.get(items)
        if shared is None:
            shared = self._counts[items] = MappingProxyType(dict(counts))
        return shared

    def check(self, version: int) -> bool:
        """Call inside the write transaction with the file's ``PRAGMA data_version``.
        True if the cache starts again (then call ``start_events``)."""
        if version == self.version:
            return False
        self.clear()
        self.version = version
        return True

    def start_events(self, file_has_events: bool) -> None:
        """Keep every event id from now on if the file has none yet."""
        self.events = None if file_has_events else set()

    def seen(self, event_ids: Iterable[str]) -> set[str] | None:
        """Which of ``event_ids`` the file holds, or None if the cache cannot tell."""
        events = self.events
        if events is None:
            return None
        return {e for e in event_ids if e in events}

    def missing(self, keys: Iterable[str]) -> list[str]:
        nodes = self.nodes
        return [k for k in keys if k not in nodes]

    def holds_every_node(self, max_node_id: int) -> bool:
        """Whether every node of the file is remembered, given the file's largest node
        id: ids are given in order from 1 and the remembered ones are distinct ids of
        the file, so as many as the largest id are all of them."""
        return len(self.nodes) == max_node_id

    def remember(self, key: str, node: int, cluster: int, state: CustomerState) -> None:
        """A node and its customer, as read from the file in this transaction."""
        self.nodes[key] = (node, state.id)
        if state.id not in self.customers:
            state.kind_counts = self.shared_counts(state.kind_counts)
            self.customers[state.id] = (cluster, state)

    def customer_of(self, customer_id: str) -> str:
        """The live customer a remembered customer id names now."""
        absorbed = self.absorbed
        if customer_id not in absorbed:
            return customer_id
        live = customer_id
        while live in absorbed:
            live = absorbed[live]
        while customer_id != live:  # shorten the chain for the next lookup
            absorbed[customer_id], customer_id = live, absorbed[customer_id]
        return live

    def learn(
        self,
        plan: ResolutionPlan,
        node_ids: Mapping[str, int],
        cluster_of: Mapping[str, list[int]],
        linked: Iterable[int],
    ) -> None:
        """What a committed batch wrote: its new nodes (``node_ids`` by key), merges,
        the final state of every customer it changed (``cluster_of``: id → cluster) and
        the pairs whose link is now accepted."""
        customers = self.customers
        for merge in plan.merges:
            self.absorbed[merge.absorbed] = merge.survivor
            customers.pop(merge.absorbed, None)
        created = {c.id: c.created_at for c in plan.new_customers}
        for u in plan.customer_updates:
            old = customers.get(u.id)
            at = old[1].created_at if old is not None else created[u.id]
            counts = self.shared_counts(u.kind_counts)
            customers[u.id] = (cluster_of[u.id][0], CustomerState(u.id, at, u.size, counts))
        nodes = self.nodes
        for new in plan.new_nodes:
            nodes[new.node.key] = (node_ids[new.node.key], new.customer_id)
        self.linked.update(linked)
        if self.events is not None:
            self.events.update(plan.applied_events)
            if len(self.events) > self.max_nodes:
                self.events = None  # the file is asked again
        if len(nodes) > self.max_nodes or len(self.linked) > self.max_nodes:
            self.clear()
