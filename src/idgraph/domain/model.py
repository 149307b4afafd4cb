"""The vocabulary of idgraph (see docs/concepts.md, "Words").

Values made once per event on the ingest hot path (events and their parts, nodes,
links, plan records, outcomes) are msgspec Structs: built, freed and sent between
processes (:mod:`idgraph.bulk`) for about half what a slotted dataclass costs, which
took ~8% of the ingest writer's instructions. Treat them as immutable all the same;
copy one changed with ``msgspec.structs.replace``. The rest are dataclasses."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, final

import msgspec

JSONValue = Any

DEVICE = "device"
ACCOUNT = "account"
# An event's interaction has the event's id and this suffix: an interaction still
# stored makes a replay of its event a duplicate even once the event id is forgotten.
INTERACTION_ID_SUFFIX = "#interaction"


class NodeType(StrEnum):
    IDENTIFIER = "Identifier"
    DEVICE = "Device"
    ACCOUNT = "Account"


def node_type_of(kind: str) -> NodeType:
    if kind == DEVICE:
        return NodeType.DEVICE
    if kind == ACCOUNT:
        return NodeType.ACCOUNT
    return NodeType.IDENTIFIER


class IdentityNode(msgspec.Struct):
    """An identifier, device or account, normalized.

    ``key`` is the stable identity (``email:alice@example.com``, ``device:ab12``,
    ``account:shop:42``); ``value`` is everything after the first ``kind:``.
    ``attrs`` carries descriptive fields (a device's os/model, an account's system/id).
    """

    key: str
    kind: str
    value: str
    attrs: Mapping[str, str] = {}

    @property
    def type(self) -> NodeType:
        return node_type_of(self.kind)


def split_key(key: str) -> tuple[str, str]:
    kind, _, value = key.partition(":")
    return kind, value


class ConsentStatus(StrEnum):
    GRANTED = "granted"
    DENIED = "denied"


class ConsentDecision(msgspec.Struct, frozen=True):
    purpose: str
    status: ConsentStatus
    expires_at: datetime | None = None


class InteractionInput(msgspec.Struct, frozen=True):
    type: str
    channel: str | None = None
    properties: Mapping[str, JSONValue] = {}


class Event(msgspec.Struct):
    """One validated, normalized event. ``nodes`` are unique by key, blocked values
    removed, highest priority first (event order on ties): ``nodes[0]`` is the event's
    subject."""

    id: str
    timestamp: datetime
    source: str
    nodes: tuple[IdentityNode, ...]
    traits: Mapping[str, JSONValue] = {}
    interaction: InteractionInput | None = None
    consent: ConsentDecision | None = None


class CustomerState(msgspec.Struct):
    """What the planner needs to know about an existing customer."""

    id: str
    created_at: datetime
    size: int
    kind_counts: Mapping[str, int]


@dataclass(slots=True)
class Snapshot:
    """The store's answer, read inside the write transaction, for one batch.

    ``node_customer`` maps every *existing* key of the batch to its customer id;
    ``customers`` describes those customers; ``bans`` lists pairs of those customers
    that a steward's ban forbids to merge; ``seen_events`` are the batch's event ids
    that were applied before; ``erased_keys`` are batch keys that were erased.
    """

    node_customer: dict[str, str]
    customers: dict[str, CustomerState]
    bans: set[frozenset[str]] = field(default_factory=set)
    seen_events: set[str] = field(default_factory=set)
    erased_keys: set[str] = field(default_factory=set)


class Link(msgspec.Struct):
    """Evidence that two identity nodes belong together; ``a < b``, one link per pair.

    ``source``/``at``/``event_id`` are the first evidence for the pair; ``rule`` names
    the rule that refused it (``limit:user_id``, ``max_size``, ``ban``, ``unlink``).
    """

    a: str
    b: str
    source: str
    at: datetime
    event_id: str
    accepted: bool
    rule: str | None = None


class Merge(msgspec.Struct, frozen=True):
    absorbed: str
    survivor: str


class NewNode(msgspec.Struct):
    node: IdentityNode
    customer_id: str
    at: datetime


class NewCustomer(msgspec.Struct, frozen=True):
    id: str
    created_at: datetime


class CustomerUpdate(msgspec.Struct, frozen=True):
    """The final state of a customer whose identity nodes the batch changed."""

    id: str
    size: int
    kind_counts: Mapping[str, int]
    updated_at: datetime


class TraitReport(msgspec.Struct):
    key: str
    name: str
    value: JSONValue
    source: str
    at: datetime
    event_id: str


@final  # so mypy knows no value is both this and an InteractionView (encryption.sealing)
class InteractionRecord(msgspec.Struct):
    """An event's interaction, attached to the event's subject node ``key`` only."""

    id: str
    key: str
    type: str
    channel: str | None
    at: datetime
    source: str
    properties: Mapping[str, JSONValue]
    event_id: str


class ConsentRecord(msgspec.Struct):
    """One consent decision, recorded on one identity node (its event's subject).

    ``at`` is the time its source claims (the event's timestamp), kept as information.
    Decisions are ordered by when idgraph recorded them: ``recorded_at`` (the time of
    the batch that applied it), then ``seq``, which the store keeps increasing among
    decisions recorded at the same time (their order in the batch). So a decision
    recorded later always wins, whatever time its source claims.
    """

    key: str
    purpose: str
    status: ConsentStatus
    at: datetime
    expires_at: datetime | None
    source: str
    event_id: str
    recorded_at: datetime
    seq: int

    @property
    def order(self) -> tuple[datetime, int]:
        return (self.recorded_at, self.seq)


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class Refusal(StrEnum):
    """Why an event was not applied, for programs (``reason`` says it for people)."""

    INVALID = "invalid"  # the event breaks the format; ``path`` names the field
    ERASED = "erased"  # it carries an identifier that was erased
    DUPLICATE = "duplicate"  # its id was applied before


class EventOutcome(msgspec.Struct):
    event_id: str
    outcome: Outcome
    reason: str | None = None
    customer_ids: tuple[str, ...] = ()
    refusal: Refusal | None = None
    path: tuple[str, ...] = ()  # for INVALID: the field at fault, e.g. ("traits", "city")


@dataclass(slots=True)
class ResolutionPlan:
    """Everything one batch changes, computed in memory, applied in one transaction.

    Order of application: new customers, merges (relabel absorbed → survivor, aliases),
    new nodes (already carrying their final customer id), customer updates, links,
    traits, interactions, consents, applied event ids.
    """

    at: datetime
    new_customers: list[NewCustomer] = field(default_factory=list)
    merges: list[Merge] = field(default_factory=list)
    new_nodes: list[NewNode] = field(default_factory=list)
    customer_updates: list[CustomerUpdate] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    traits: list[TraitReport] = field(default_factory=list)
    interactions: list[InteractionRecord] = field(default_factory=list)
    consents: list[ConsentRecord] = field(default_factory=list)
    applied_events: list[str] = field(default_factory=list)
    outcomes: list[EventOutcome] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.applied_events


# ---- read models ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRecord:
    key: str
    kind: str
    value: str
    customer_id: str
    attrs: Mapping[str, str]
    created_at: datetime

    @property
    def type(self) -> NodeType:
        return node_type_of(self.kind)


@dataclass(frozen=True, slots=True)
class CustomerRecord:
    id: str
    created_at: datetime
    updated_at: datetime
    size: int
    kind_counts: Mapping[str, int]
    aliases: tuple[str, ...] = ()
    split_from: str | None = None


@dataclass(frozen=True, slots=True)
class TraitRecord:
    key: str
    name: str
    value: JSONValue
    source: str
    at: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class InteractionView:
    id: str
    type: str
    channel: str | None
    at: datetime
    source: str
    properties: Mapping[str, JSONValue]
    event_id: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SharedAttachment:
    """An interaction (``what="interaction"``, ``id`` its id), or one event's consent
    decision (``what="consent"``, ``id`` the event id), attached to several identity
    nodes: how stores written before every event had one subject attributed data."""

    what: str
    id: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AttachmentRepair:
    """What ``repair_attachments`` dropped: attachments of interactions (``performed``
    rows / ``PERFORMED`` relationships) and consent records, beside the kept subject."""

    interactions: int
    consents: int


@dataclass(frozen=True, slots=True)
class Component:
    """A customer's identity nodes and the accepted links among them (for splits)."""

    customer: CustomerRecord
    nodes: list[NodeRecord]
    links: list[Link]


@dataclass(frozen=True, slots=True)
class SplitPart:
    customer_id: str
    keys: tuple[str, ...]
    kind_counts: Mapping[str, int]
    is_new: bool


@dataclass(slots=True)
class SplitPlan:
    """How one customer is split: the links to reject and the parts that result."""

    customer_id: str
    rejected_links: list[tuple[str, str, str]]  # (a, b, rule)
    parts: list[SplitPart]
    at: datetime
    ban: tuple[str, str] | None = None
    note: str = ""


def utcnow() -> datetime:
    return datetime.now(UTC)
