"""Every Cypher statement idgraph runs, as named constants, so they can be reviewed whole.

Values always travel as ``$parameters``; no statement is ever built by formatting text.
Neo4j 5 Community syntax only. The graph, as an analyst sees it (docs/architecture.md):

    (:Identity:Identifier {key, kind, value, createdAt})    email, phone, cookie, user_id, …
    (:Identity:Device {key, kind, value, createdAt, os?, model?})
    (:Identity:Account {key, kind, value, createdAt, system, id})
    (:Customer {id, createdAt, updatedAt, size, kindCounts, splitFrom?, merged: false})
    (:Customer {id, merged: true, mergedAt})                 an absorbed id (an alias)
    (:Interaction {id, type, channel?, at, source, properties, eventId})
    (:Purpose {name})   (:Trait {name, value, source, at, eventId, instant?})
    (:Segment {name, filter, description, createdAt})   a saved segment; filter is JSON

    (identity)-[:LINKED {source, at, eventId, accepted, rule?, lastAt}]->(identity)
    (identity)-[:BELONGS_TO]->(:Customer)            exactly one per identity node
    (identity)-[:PERFORMED {node, at}]->(:Interaction)   one per interaction: its subject
    (identity)-[:CONSENT {status, at, expiresAt?, source, eventId, recordedAt, seq}]->(:Purpose)
    (identity)-[:HAS_TRAIT]->(:Trait)                the latest report per trait name
    (identity)-[:BANNED {at}]->(identity)            a steward's ban, a.key < b.key
    (:Customer {merged: true})-[:MERGED_INTO {at, via?}]->(:Customer {merged: false})

``LINKED`` always points from the smaller key to the larger and keeps its first evidence;
``lastAt`` is when it was last refused (or accepted after a refusal).
``PERFORMED`` repeats its identity's key (``node``) and its interaction's time (``at``), so
an index on both holds each identity's interactions in time order (``PROFILES``).
``kindCounts`` (identity nodes per kind), trait values and interaction properties are
JSON text. ``MERGED_INTO`` always leads straight to the live customer (one hop): when a
survivor is absorbed later its aliases are re-pointed, keeping their time and ``via``.
Times are DateTime values; inside ``$rows`` they travel as ISO-8601 text that the statement
converts (``datetime(row.at)``), several times cheaper for the driver to send.
Housekeeping nodes: ``(:Event {id, at})`` (applied event ids), ``(:Erased {hash, at})``
(keyed hashes of erased keys, :mod:`idgraph.store.erasure`), ``(:ApiKey {name, role,
purposes, secretHash, createdAt, revokedAt?})``, ``(:AuditEntry {seq, at, actor, purpose,
operation, customerId?, detail})``, ``(:IdgraphMeta {name, value})`` (audit counter;
erasure key fingerprint; legacy erasure salt; schema version; the mark of a restore in
progress), ``(:IdgraphLock {name})``.
"""

from __future__ import annotations

# ---- schema (idempotent; run at every start and by `idgraph init-schema`) ---------------

SCHEMA = (
    "CREATE CONSTRAINT identity_key IF NOT EXISTS FOR (n:Identity) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT customer_id IF NOT EXISTS FOR (c:Customer) REQUIRE c.id IS UNIQUE",
    "CREATE CONSTRAINT interaction_id IF NOT EXISTS FOR (i:Interaction) REQUIRE i.id IS UNIQUE",
    "CREATE CONSTRAINT purpose_name IF NOT EXISTS FOR (p:Purpose) REQUIRE p.name IS UNIQUE",
    "CREATE CONSTRAINT event_id IF NOT EXISTS FOR (e:Event) REQUIRE e.id IS UNIQUE",
    "CREATE CONSTRAINT erased_hash IF NOT EXISTS FOR (e:Erased) REQUIRE e.hash IS UNIQUE",
    "CREATE CONSTRAINT meta_name IF NOT EXISTS FOR (m:IdgraphMeta) REQUIRE m.name IS UNIQUE",
    "CREATE CONSTRAINT lock_name IF NOT EXISTS FOR (l:IdgraphLock) REQUIRE l.name IS UNIQUE",
    "CREATE CONSTRAINT api_key_name IF NOT EXISTS FOR (k:ApiKey) REQUIRE k.name IS UNIQUE",
    "CREATE CONSTRAINT api_key_hash IF NOT EXISTS FOR (k:ApiKey) REQUIRE k.secretHash IS UNIQUE",
    "CREATE CONSTRAINT audit_seq IF NOT EXISTS FOR (e:AuditEntry) REQUIRE e.seq IS UNIQUE",
    "CREATE CONSTRAINT segment_name IF NOT EXISTS FOR (s:Segment) REQUIRE s.name IS UNIQUE",
    "CREATE INDEX identity_kind_value IF NOT EXISTS FOR (n:Identity) ON (n.kind, n.value)",
    "CREATE INDEX identity_kind IF NOT EXISTS FOR (n:Identity) ON (n.kind)",
    "CREATE INDEX customer_size IF NOT EXISTS FOR (c:Customer) ON (c.size)",
    "CREATE INDEX interaction_at IF NOT EXISTS FOR (i:Interaction) ON (i.at)",
    "CREATE INDEX performed_node_at IF NOT EXISTS FOR ()-[p:PERFORMED]-() ON (p.node, p.at)",
    "CREATE INDEX linked_accepted IF NOT EXISTS FOR ()-[r:LINKED]-() ON (r.accepted)",
    "CREATE INDEX linked_rule IF NOT EXISTS FOR ()-[r:LINKED]-() ON (r.rule)",
    "CREATE INDEX audit_customer IF NOT EXISTS FOR (e:AuditEntry) ON (e.customerId)",
    "CREATE INDEX audit_at IF NOT EXISTS FOR (e:AuditEntry) ON (e.at)",
    # A segment's start (neo4j_segments.py): customers with a trait of a given value.
    "CREATE INDEX trait_name_value IF NOT EXISTS FOR (t:Trait) ON (t.name, t.value)",
)

# Schema that earlier versions created and this one drops (idempotent). Every identifier,
# device and account is an Identity, so ``identity_key`` alone keeps keys unique; the
# per-label constraints only made each new node update a second unique index.
RETIRED_SCHEMA = (
    "DROP CONSTRAINT identifier_key IF EXISTS",
    "DROP CONSTRAINT device_key IF EXISTS",
    "DROP CONSTRAINT account_key IF EXISTS",
)

PING = "RETURN 1 AS ok"

AWAIT_INDEXES = "CALL db.awaitIndexes($seconds)"

META_VALUE = "MATCH (m:IdgraphMeta {name: $name}) RETURN m.value AS value"

SET_META = "MERGE (m:IdgraphMeta {name: $name}) SET m.value = $value"

DELETE_META = "MATCH (m:IdgraphMeta {name: $name}) DELETE m"

# The ingest path's statements (LOCK_WRITERS, SNAPSHOT, ERASED_AMONG and those applying a
# ResolutionPlan) say ``CYPHER replan=skip``: they keep the plan the server made first,
# however much the store's statistics move. A bulk load moves them all the time, and each
# move made the server plan the statements again and compile new code for them, in the
# server CPU the load is short of (README, Neo4j). The API's profile reads (PROFILES and
# the *_OF statements) say it too: a load running beside the API would otherwise make a
# request now and then wait for its statement to be planned and compiled again. Keeping
# the first plan is safe because every lookup in these statements demands its index
# (``USING INDEX SEEK``, see SNAPSHOT): there is no other plan to find
# (tests/neo4j/test_plans.py).

# Every write transaction starts here. Setting a property takes the node's exclusive lock,
# held until commit or rollback, so idgraph's writers run one after the other.
LOCK_WRITERS = (
    "CYPHER replan=skip MERGE (l:IdgraphLock {name: 'writer'}) SET l.lockedAt = datetime()"
)

DELETE_SOME = """
MATCH (n)
WITH n LIMIT $pageSize
DETACH DELETE n
RETURN count(*) AS deleted
"""

# The same, keeping what the store records about itself (as SQLite keeps its meta table).
DELETE_SOME_DATA = """
MATCH (n) WHERE NOT n:IdgraphMeta
WITH n LIMIT $pageSize
DETACH DELETE n
RETURN count(*) AS deleted
"""

# ---- the snapshot a batch is planned against ---------------------------------------------

# One round trip, one row: the customer of every key, each customer once, the bans between
# them, which event ids were applied already and which key hashes were erased. Bans are a
# steward's few decisions: scanning them all is cheaper than expanding customers.
# ``createdAt`` comes as epoch seconds and nanoseconds: the driver builds a DateTime
# object in Python far more slowly than two integers, and a batch reads thousands.
# ``anyErased`` (from the count store, no scan) tells a writer that sent no hashes,
# believing nothing was ever erased, to look them up after all (ERASED_AMONG).
#
# Plans. The server plans a statement once and keeps the plan while its statistics do not
# change much, so a plan made on an empty or just-cleared store (whose index samples say
# the key index is empty) can serve the whole bulk load that follows. Planned there, the
# lookup by key became a scan of the entire key index for every key: a quadratic batch,
# 900 database hits per event instead of 13 and 5-7 times slower, in about half the runs
# of bench/ingest.py --replace; and the bans part scanned every BELONGS_TO relationship.
# Every lookup of the write path therefore demands a seek in its index (``USING INDEX
# SEEK``), and bans are read on their own from the BANNED relationships alone, before
# their customers are expanded (tests/neo4j/test_plans.py).
SNAPSHOT = """
CYPHER replan=skip
CALL {
  UNWIND $keys AS key
  MATCH (n:Identity {key: key})-[:BELONGS_TO]->(c:Customer)
  USING INDEX SEEK n:Identity(key)
  RETURN collect([key, c.id]) AS members, collect(DISTINCT c) AS found
}
CALL {
  MATCH (a)-[:BANNED]->(b)
  RETURN collect([a, b]) AS banned
}
CALL {
  WITH found, banned
  UNWIND banned AS pair
  WITH found, pair[0] AS a, pair[1] AS b
  MATCH (a)-[:BELONGS_TO]->(ca:Customer)
  MATCH (b)-[:BELONGS_TO]->(cb:Customer)
  WHERE ca <> cb AND ca IN found AND cb IN found
  RETURN collect([ca.id, cb.id]) AS bans
}
CALL {
  UNWIND $eventIds AS id
  MATCH (e:Event {id: id})
  USING INDEX SEEK e:Event(id)
  RETURN collect(e.id) AS seen
}
CALL {
  UNWIND $hashes AS hash
  MATCH (e:Erased {hash: hash})
  USING INDEX SEEK e:Erased(hash)
  RETURN collect(e.hash) AS erased
}
CALL {
  MATCH (e:Erased)
  RETURN count(e) > 0 AS anyErased
}
RETURN members, bans, seen, erased, anyErased,
       [c IN found | [c.id, c.size, c.kindCounts,
                      c.createdAt.epochSeconds, c.createdAt.nanosecond]] AS customers
"""

ERASED_AMONG = """
CYPHER replan=skip
UNWIND $hashes AS hash
MATCH (e:Erased {hash: hash})
USING INDEX SEEK e:Erased(hash)
RETURN collect(e.hash) AS erased
"""

# ---- applying a ResolutionPlan (in this order) -------------------------------------------

# New customers with their final size and counts (the plan knows them already).
CREATE_CUSTOMERS = """
CYPHER replan=skip
UNWIND $rows AS row
CREATE (:Customer {id: row.id, createdAt: datetime(row.at), updatedAt: datetime(row.updatedAt),
                   size: row.size, kindCounts: row.kindCounts, merged: false})
"""

# Merges: each row names an absorbed customer and the live customer it ends in. Members
# and aliases are reached from it (unlabelled: no plan may start from their label).
MOVE_MEMBERS = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (a:Customer {id: row.absorbed})
USING INDEX SEEK a:Customer(id)
MATCH (s:Customer {id: row.survivor})
USING INDEX SEEK s:Customer(id)
MATCH (n)-[r:BELONGS_TO]->(a)
DELETE r
CREATE (n)-[:BELONGS_TO]->(s)
"""

REPOINT_ALIASES = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (a:Customer {id: row.absorbed})
USING INDEX SEEK a:Customer(id)
MATCH (s:Customer {id: row.survivor})
USING INDEX SEEK s:Customer(id)
MATCH (x)-[m:MERGED_INTO]->(a)
CREATE (x)-[:MERGED_INTO {at: m.at, via: coalesce(m.via, a.id)}]->(s)
DELETE m
"""

RETIRE_CUSTOMERS = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (a:Customer {id: row.absorbed})
USING INDEX SEEK a:Customer(id)
MATCH (s:Customer {id: row.survivor})
USING INDEX SEEK s:Customer(id)
WITH a, s, datetime(row.at) AS at
CREATE (a)-[:MERGED_INTO {at: at}]->(s)
SET a.merged = true, a.mergedAt = at
REMOVE a.size, a.kindCounts, a.updatedAt, a.splitFrom
"""

# New identity nodes, one statement per label (labels cannot be parameters in Neo4j 5).
# Descriptive attributes become properties: a device's os/model, an account's system/id.
CREATE_IDENTIFIERS = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (c:Customer {id: row.customer})
USING INDEX SEEK c:Customer(id)
CREATE (n:Identity:Identifier {key: row.key, kind: row.kind, value: row.value,
                               createdAt: datetime(row.at)})
SET n += row.attrs
CREATE (n)-[:BELONGS_TO]->(c)
"""

CREATE_DEVICES = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (c:Customer {id: row.customer})
USING INDEX SEEK c:Customer(id)
CREATE (n:Identity:Device {key: row.key, kind: row.kind, value: row.value,
                               createdAt: datetime(row.at)})
SET n += row.attrs
CREATE (n)-[:BELONGS_TO]->(c)
"""

CREATE_ACCOUNTS = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (c:Customer {id: row.customer})
USING INDEX SEEK c:Customer(id)
CREATE (n:Identity:Account {key: row.key, kind: row.kind, value: row.value,
                               createdAt: datetime(row.at)})
SET n += row.attrs
CREATE (n)-[:BELONGS_TO]->(c)
"""

UPDATE_CUSTOMERS = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (c:Customer {id: row.id})
USING INDEX SEEK c:Customer(id)
SET c.size = row.size, c.kindCounts = row.kindCounts, c.updatedAt = datetime(row.at)
"""

# Links, one row per node pair: the first evidence's source, time and event, and the
# verdict (accepted, rule, ``lastAt``) of the first accepted evidence, or else of the last
# refused one (the adapter folds a batch's evidence per pair: ``_link_rows``).
# A pair with a node the snapshot did not know cannot be linked yet: it is created.
CREATE_LINKS = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (x:Identity {key: row.a})
USING INDEX SEEK x:Identity(key)
MATCH (y:Identity {key: row.b})
USING INDEX SEEK y:Identity(key)
CREATE (x)-[:LINKED {source: row.source, at: datetime(row.at), eventId: row.eventId,
                     accepted: row.accepted, rule: row.rule, lastAt: datetime(row.lastAt)}]->(y)
"""

# A pair of known nodes may be linked already: it keeps its first evidence. New evidence
# for an accepted pair writes nothing; for a refused pair it sets the verdict, rule and
# time anew (like SQLite).
MERGE_LINKS = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (x:Identity {key: row.a})
USING INDEX SEEK x:Identity(key)
MATCH (y:Identity {key: row.b})
USING INDEX SEEK y:Identity(key)
MERGE (x)-[r:LINKED]->(y)
ON CREATE SET r.source = row.source, r.at = datetime(row.at), r.eventId = row.eventId,
              r.accepted = row.accepted, r.rule = row.rule, r.lastAt = datetime(row.lastAt)
WITH r, row
WHERE NOT r.accepted
SET r.accepted = row.accepted, r.rule = row.rule, r.lastAt = datetime(row.lastAt)
"""

# Traits, one row per (identity node, trait name): the batch's latest report (the adapter
# keeps it: ``_trait_rows``). A node the snapshot did not know has no trait yet.
# ``instant``: the UTC instant a string value names when it is an RFC 3339 timestamp, else
# null (no property), for segment comparisons (idgraph.domain.segment.instant decides).
CREATE_TRAITS = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (n:Identity {key: row.key})
USING INDEX SEEK n:Identity(key)
CREATE (n)-[:HAS_TRAIT]->(:Trait {name: row.name, value: row.value, source: row.source,
                                  at: datetime(row.at), eventId: row.eventId,
                                  instant: datetime(row.instant)})
"""

# The latest report per (identity node, trait name) wins; an older report changes nothing.
MERGE_TRAITS = """
CYPHER replan=skip
UNWIND $rows AS row
MATCH (n:Identity {key: row.key})
USING INDEX SEEK n:Identity(key)
MERGE (n)-[:HAS_TRAIT]->(t:Trait {name: row.name})
WITH t, row, datetime(row.at) AS at
WHERE t.at IS NULL OR at >= t.at
SET t.value = row.value, t.source = row.source, t.at = at, t.eventId = row.eventId,
    t.instant = datetime(row.instant)
"""

# ``row.keys`` is the event's subject alone (a list, like MERGE_INTERACTIONS' rows).
CREATE_INTERACTIONS = """
CYPHER replan=skip
UNWIND $rows AS row
CREATE (i:Interaction {id: row.id, type: row.type, channel: row.channel,
                      at: datetime(row.at), source: row.source, properties: row.properties,
                      eventId: row.eventId})
WITH i, row
UNWIND row.keys AS key
MATCH (n:Identity {key: key})
USING INDEX SEEK n:Identity(key)
CREATE (n)-[:PERFORMED {node: key, at: i.at}]->(i)
"""

# `export --to` copies one customer's view at a time: an interaction shared by two
# customers' nodes arrives twice, so it is merged rather than created.
MERGE_INTERACTIONS = """
UNWIND $rows AS row
MERGE (i:Interaction {id: row.id})
ON CREATE SET i.type = row.type, i.channel = row.channel, i.at = datetime(row.at),
              i.source = row.source, i.properties = row.properties, i.eventId = row.eventId
WITH i, row
UNWIND row.keys AS key
MATCH (n:Identity {key: key})
USING INDEX SEEK n:Identity(key)
MERGE (n)-[p:PERFORMED]->(i)
ON CREATE SET p.node = key, p.at = i.at
"""

# Consent is history: every decision is a new relationship, never an update. Decisions
# are ordered by (recordedAt, seq): when idgraph recorded them, not the event's `at`.
# Each purpose is merged once per statement, not once per row.
CREATE_CONSENTS = """
CYPHER replan=skip
CALL {
  UNWIND $rows AS row
  WITH DISTINCT row.purpose AS name
  MERGE (:Purpose {name: name})
}
UNWIND $rows AS row
MATCH (n:Identity {key: row.key})
USING INDEX SEEK n:Identity(key)
MATCH (p:Purpose {name: row.purpose})
USING INDEX SEEK p:Purpose(name)
CREATE (n)-[:CONSENT {status: row.status, at: datetime(row.at),
                      expiresAt: datetime(row.expiresAt), source: row.source,
                      eventId: row.eventId, recordedAt: datetime(row.recordedAt),
                      seq: row.seq}]->(p)
"""

CREATE_EVENTS = "CYPHER replan=skip UNWIND $ids AS id CREATE (:Event {id: id, at: $at})"

# ---- applying a SplitPlan ----------------------------------------------------------------

REJECT_LINKS = """
UNWIND $rows AS row
MATCH (a:Identity {key: row.a})-[r:LINKED]->(b:Identity {key: row.b})
SET r.accepted = false, r.rule = row.rule, r.lastAt = $at
"""

MERGE_BANS = """
UNWIND $rows AS row
MATCH (a:Identity {key: row.a})
MATCH (b:Identity {key: row.b})
MERGE (a)-[r:BANNED]->(b)
ON CREATE SET r.at = datetime(row.at)
"""

CREATE_SPLIT_PARTS = """
UNWIND $parts AS part
CREATE (c:Customer {id: part.id, createdAt: $at, updatedAt: $at, size: part.size,
                    kindCounts: part.kindCounts, splitFrom: $splitFrom, merged: false})
WITH c, part
UNWIND part.keys AS key
MATCH (n:Identity {key: key})-[r:BELONGS_TO]->(:Customer)
DELETE r
CREATE (n)-[:BELONGS_TO]->(c)
"""

# ---- reads -------------------------------------------------------------------------------
# The API's reads seek their starting nodes in an index too (``USING INDEX SEEK``): a
# server started on an empty store plans them there and may keep those plans once the
# store is full (see SNAPSHOT).

CUSTOMER_IDS_OF = """
CYPHER replan=skip
UNWIND $keys AS key
MATCH (n:Identity {key: key})-[:BELONGS_TO]->(c:Customer)
USING INDEX SEEK n:Identity(key)
RETURN key, c.id AS id
"""

# Any id, live or absorbed, to the live customer it names (MERGED_INTO is one hop).
CUSTOMERS = """
CYPHER replan=skip
UNWIND $ids AS requested
MATCH (named:Customer {id: requested})
USING INDEX SEEK named:Customer(id)
OPTIONAL MATCH (named)-[:MERGED_INTO]->(survivor:Customer)
WITH requested, coalesce(survivor, named) AS c
OPTIONAL MATCH (alias:Customer)-[:MERGED_INTO]->(c)
WITH requested, c, collect(alias.id) AS aliases
RETURN requested, c.id AS id, c.createdAt AS createdAt, c.updatedAt AS updatedAt,
       c.size AS size, c.kindCounts AS kindCounts, c.splitFrom AS splitFrom, aliases
"""

NODES_OF = """
CYPHER replan=skip
UNWIND $ids AS id
MATCH (c:Customer {id: id})<-[:BELONGS_TO]-(n:Identity)
USING INDEX SEEK c:Customer(id)
RETURN id AS customer, properties(n) AS node
"""

# Times as [epochSeconds, nanosecond] (``neo4j._dt``): an export reads a batch's traits.
TRAITS_OF = """
CYPHER replan=skip
UNWIND $ids AS id
MATCH (c:Customer {id: id})<-[:BELONGS_TO]-(n:Identity)-[:HAS_TRAIT]->(t:Trait)
USING INDEX SEEK c:Customer(id)
RETURN id AS customer, n.key AS key, t.name AS name, t.value AS value, t.source AS source,
       [t.at.epochSeconds, t.at.nanosecond] AS at, t.eventId AS eventId
"""

CONSENTS_OF = """
CYPHER replan=skip
UNWIND $ids AS id
MATCH (c:Customer {id: id})<-[:BELONGS_TO]-(n:Identity)-[d:CONSENT]->(p:Purpose)
USING INDEX SEEK c:Customer(id)
RETURN id AS customer, n.key AS key, p.name AS purpose, d.status AS status, d.at AS at,
       d.expiresAt AS expiresAt, d.source AS source, d.eventId AS eventId,
       d.recordedAt AS recordedAt, d.seq AS seq
"""

# A profile read in one statement: for each identity key, its customer and the parts asked
# for (a false flag or a zero page size skips a part). Each part is aggregated in its own
# subquery, so it is one row per key whatever each part holds.
# Times come back as [epochSeconds, nanosecond] (``neo4j._dt``): this runs on every resolve,
# and the driver's own DateTime objects cost more than the rest of the row.
#
# A page of interactions reads, per identity, only those that can be on it: the time of
# its ``pageSize``-th newest that passes the filters, from the end of its range in the
# ``performed_node_at`` index, then its interactions from that time on (all that share
# it: the page breaks ties by id, the index does not). ``$atFrom`` and ``$atTo`` bound
# that range (``since`` and the cursor's time, or the widest times), so the index is
# sought, not scanned. Null ``beforeAt`` and ``types`` switch those filters off.
PROFILES = """
CYPHER replan=skip
UNWIND $keys AS key
MATCH (k:Identity {key: key})-[:BELONGS_TO]->(c:Customer)
USING INDEX SEEK k:Identity(key)
CALL {
  WITH c
  OPTIONAL MATCH (alias:Customer)-[:MERGED_INTO]->(c)
  RETURN collect(alias.id) AS aliases
}
CALL {
  WITH c
  MATCH (c)<-[:BELONGS_TO]-(n:Identity)
  WHERE $nodes
  RETURN collect(n {.*, createdAt: [n.createdAt.epochSeconds, n.createdAt.nanosecond]}) AS nodes
}
CALL {
  WITH c
  MATCH (c)<-[:BELONGS_TO]-(n:Identity)-[d:CONSENT]->(p:Purpose)
  WHERE $consents
  RETURN collect({key: n.key, purpose: p.name, status: d.status,
                  at: [d.at.epochSeconds, d.at.nanosecond],
                  expiresAt: CASE WHEN d.expiresAt IS NULL THEN null
                             ELSE [d.expiresAt.epochSeconds, d.expiresAt.nanosecond] END,
                  source: d.source, eventId: d.eventId,
                  recordedAt: [d.recordedAt.epochSeconds, d.recordedAt.nanosecond],
                  seq: d.seq}) AS consents
}
CALL {
  WITH c
  MATCH (c)<-[:BELONGS_TO]-(n:Identity)-[:HAS_TRAIT]->(t:Trait)
  WHERE $traits
  RETURN collect({key: n.key, name: t.name, value: t.value, source: t.source,
                  at: [t.at.epochSeconds, t.at.nanosecond], eventId: t.eventId}) AS traits
}
CALL {
  WITH c
  MATCH (c)<-[:BELONGS_TO]-(n:Identity)
  WHERE $pageSize > 0
  CALL {
    WITH n
    MATCH ()-[p:PERFORMED]->(i:Interaction)
    USING INDEX p:PERFORMED(node, at)
    WHERE p.node = n.key AND $atFrom <= p.at <= $atTo
      AND ($beforeAt IS NULL OR i.at < $beforeAt OR (i.at = $beforeAt AND i.id < $beforeId))
      AND ($types IS NULL OR i.type IN $types)
    WITH p ORDER BY p.node DESC, p.at DESC LIMIT $pageSize
    RETURN min(p.at) AS oldestWanted
  }
  MATCH ()-[p:PERFORMED]->(i:Interaction)
  USING INDEX p:PERFORMED(node, at)
  WHERE p.node = n.key AND oldestWanted <= p.at <= $atTo
  WITH DISTINCT i
  WHERE ($beforeAt IS NULL OR i.at < $beforeAt OR (i.at = $beforeAt AND i.id < $beforeId))
    AND ($types IS NULL OR i.type IN $types)
  WITH i ORDER BY i.at DESC, i.id DESC LIMIT $pageSize
  MATCH (n:Identity)-[:PERFORMED]->(i)
  WITH i, collect(n.key) AS keys
  RETURN collect({id: i.id, type: i.type, channel: i.channel,
                  at: [i.at.epochSeconds, i.at.nanosecond], source: i.source,
                  properties: i.properties, eventId: i.eventId, keys: keys}) AS interactions
}
RETURN key, c.id AS id, [c.createdAt.epochSeconds, c.createdAt.nanosecond] AS createdAt,
       [c.updatedAt.epochSeconds, c.updatedAt.nanosecond] AS updatedAt, c.size AS size,
       c.kindCounts AS kindCounts, c.splitFrom AS splitFrom, aliases, nodes, consents, traits,
       interactions
"""

# Read as in PROFILES. The page is cut before performers are collected.
INTERACTIONS_OF = """
CYPHER replan=skip
UNWIND $ids AS customer
CALL {
  WITH customer
  MATCH (c:Customer {id: customer})<-[:BELONGS_TO]-(n:Identity)
  USING INDEX SEEK c:Customer(id)
  CALL {
    WITH n
    MATCH ()-[p:PERFORMED]->(i:Interaction)
    USING INDEX p:PERFORMED(node, at)
    WHERE p.node = n.key AND $atFrom <= p.at <= $atTo
      AND ($beforeAt IS NULL OR i.at < $beforeAt OR (i.at = $beforeAt AND i.id < $beforeId))
      AND ($types IS NULL OR i.type IN $types)
    WITH p ORDER BY p.node DESC, p.at DESC LIMIT $pageSize
    RETURN min(p.at) AS oldestWanted
  }
  MATCH ()-[p:PERFORMED]->(i:Interaction)
  USING INDEX p:PERFORMED(node, at)
  WHERE p.node = n.key AND oldestWanted <= p.at <= $atTo
  WITH DISTINCT i
  WHERE ($beforeAt IS NULL OR i.at < $beforeAt OR (i.at = $beforeAt AND i.id < $beforeId))
    AND ($types IS NULL OR i.type IN $types)
  WITH i ORDER BY i.at DESC, i.id DESC LIMIT $pageSize
  MATCH (n:Identity)-[:PERFORMED]->(i)
  RETURN i, collect(n.key) AS keys
}
RETURN customer, i.id AS id, i.type AS type, i.channel AS channel, i.at AS at,
       i.source AS source, i.properties AS properties, i.eventId AS eventId, keys
"""

COUNT_INTERACTIONS = """
UNWIND $ids AS customer
OPTIONAL MATCH (:Customer {id: customer})<-[:BELONGS_TO]-(:Identity)-[:PERFORMED]->(i:Interaction)
WHERE ($types IS NULL OR i.type IN $types) AND ($since IS NULL OR i.at >= $since)
RETURN customer, count(DISTINCT i) AS total
"""

# Data of one event on several nodes (written by earlier versions; `idgraph repair`).
SHARED_INTERACTIONS = """
MATCH (n:Identity)-[:PERFORMED]->(i:Interaction)
WITH i, collect(n.key) AS keys
WHERE size(keys) > 1
RETURN i.id AS id, keys
"""

SHARED_CONSENTS = """
MATCH (n:Identity)-[d:CONSENT]->(:Purpose)
WITH d.eventId AS id, collect(DISTINCT n.key) AS keys
WHERE size(keys) > 1
RETURN id, keys
"""

# Schema 2 → 3: each PERFORMED gets its identity's key and its interaction's time, for the
# index that pages read (PROFILES). First in batches of identities in key order, each in a
# transaction of its own (a large store's would not fit one); then, holding the writers'
# lock, whatever a writer added meanwhile (a scan of every PERFORMED, once).
BACKFILL_PERFORMED_AFTER = """
MATCH (n:Identity) WHERE n.key > $after
WITH n ORDER BY n.key LIMIT $pageSize
OPTIONAL MATCH (n)-[p:PERFORMED]->(i:Interaction)
SET p.node = n.key, p.at = i.at
RETURN max(n.key) AS last
"""

BACKFILL_PERFORMED_REST = """
MATCH (n:Identity)-[p:PERFORMED]->(i:Interaction)
WHERE p.node IS NULL OR p.at IS NULL
SET p.node = n.key, p.at = i.at
"""

DROP_PERFORMED = """
UNWIND $rows AS row
MATCH (:Identity {key: row.key})-[p:PERFORMED]->(:Interaction {id: row.id})
DELETE p
RETURN count(*) AS dropped
"""

DROP_CONSENTS = """
UNWIND $rows AS row
MATCH (:Identity {key: row.key})-[d:CONSENT]->(:Purpose)
WHERE d.eventId = row.id
DELETE d
RETURN count(*) AS dropped
"""

COMPONENT_NODES = """
MATCH (:Customer {id: $id, merged: false})<-[:BELONGS_TO]-(n:Identity)
RETURN properties(n) AS node
"""

COMPONENT_LINKS = """
MATCH (c:Customer {id: $id})<-[:BELONGS_TO]-(x:Identity)-[r:LINKED]->(y:Identity)
      -[:BELONGS_TO]->(c)
WHERE r.accepted
RETURN x.key AS a, y.key AS b, r.source AS source, r.at AS at, r.eventId AS eventId,
       r.accepted AS accepted, r.rule AS rule
"""

LINKS_OF = """
UNWIND $keys AS key
MATCH (:Identity {key: key})-[r:LINKED]-(:Identity)
RETURN startNode(r).key AS a, endNode(r).key AS b, r.source AS source, r.at AS at,
       r.eventId AS eventId, r.accepted AS accepted, r.rule AS rule
"""

REJECTED_LINKS = """
MATCH (x:Identity)-[r:LINKED]->(y:Identity)
WHERE r.accepted = false
  AND ($beforeAt IS NULL OR r.lastAt < $beforeAt
       OR (r.lastAt = $beforeAt
           AND (x.key < $beforeA OR (x.key = $beforeA AND y.key < $beforeB))))
RETURN x.key AS a, y.key AS b, r.source AS source, r.lastAt AS at, r.eventId AS eventId,
       r.rule AS rule
ORDER BY at DESC, a DESC, b DESC
LIMIT $pageSize
"""

COUNT_REJECTED_LINKS = """
MATCH ()-[r:LINKED]->() WHERE r.accepted = false RETURN count(r) AS total
"""

# ---- whole graph: pages in key order, continuing after the last key seen ---------------

ITER_NODES = """
MATCH (n:Identity)
WHERE n.key > $after
WITH n ORDER BY n.key LIMIT $pageSize
MATCH (n)-[:BELONGS_TO]->(c:Customer)
RETURN properties(n) AS node, c.id AS customer
"""

# A page of identity nodes with their outgoing links (a node without links gives nulls).
ITER_LINKS = """
MATCH (x:Identity)
WHERE x.key > $after
WITH x ORDER BY x.key LIMIT $pageSize
OPTIONAL MATCH (x)-[r:LINKED]->(y:Identity)
RETURN x.key AS a, y.key AS b, r.source AS source, r.at AS at, r.eventId AS eventId,
       r.accepted AS accepted, r.rule AS rule
"""

ITER_CUSTOMERS = """
MATCH (c:Customer)
WHERE c.id > $after AND c.merged = false
WITH c ORDER BY c.id LIMIT $pageSize
OPTIONAL MATCH (alias:Customer)-[:MERGED_INTO]->(c)
WITH c, collect(alias.id) AS aliases
RETURN c.id AS requested, c.id AS id, c.createdAt AS createdAt, c.updatedAt AS updatedAt,
       c.size AS size, c.kindCounts AS kindCounts, c.splitFrom AS splitFrom, aliases
"""

ALIASES = "MATCH (a:Customer)-[:MERGED_INTO]->(c:Customer) RETURN a.id AS alias, c.id AS id"

BANS = "MATCH (x:Identity)-[:BANNED]->(y:Identity) RETURN x.key AS a, y.key AS b"

COUNTS = {
    "nodes": "MATCH (n:Identity) RETURN count(n) AS total",
    "customers": "MATCH (c:Customer) WHERE c.merged = false RETURN count(c) AS total",
    "links": "MATCH ()-[r:LINKED]->() RETURN count(r) AS total",
    "rejected_links": "MATCH ()-[r:LINKED]->() WHERE r.accepted = false RETURN count(r) AS total",
    "aliases": "MATCH (:Customer)-[r:MERGED_INTO]->() RETURN count(r) AS total",
    "interactions": "MATCH (i:Interaction) RETURN count(i) AS total",
    "events": "MATCH (e:Event) RETURN count(e) AS total",
}

# ---- `export --to`: copying another store's customers -----------------------------------

IMPORT_CUSTOMERS = """
UNWIND $rows AS row
CREATE (c:Customer {id: row.id, createdAt: datetime(row.createdAt),
                    updatedAt: datetime(row.updatedAt), size: row.size,
                    kindCounts: row.kindCounts, splitFrom: row.splitFrom, merged: false})
WITH c, row
UNWIND row.aliases AS alias
CREATE (:Customer {id: alias, merged: true})-[:MERGED_INTO]->(c)
"""


# ---- erasure (in this order, inside one locked write transaction) ------------------------

FORGET_MEMBERS = """
MATCH (c:Customer {id: $id, merged: false})
OPTIONAL MATCH (n:Identity)-[:BELONGS_TO]->(c)
RETURN n.key AS key, n.kind AS kind
"""

# Interactions go only when no identity node of another customer performed them too.
FORGET_INTERACTIONS = """
MATCH (c:Customer {id: $id})<-[:BELONGS_TO]-(:Identity)-[:PERFORMED]->(i:Interaction)
WITH DISTINCT c, i
MATCH (m:Identity)-[:PERFORMED]->(i)
OPTIONAL MATCH (m)-[ours:BELONGS_TO]->(c)
WITH i, count(m) AS performers, count(ours) AS ourPerformers
WHERE performers = ourPerformers
DETACH DELETE i
RETURN count(*) AS deleted
"""

FORGET_TRAITS = """
MATCH (:Customer {id: $id})<-[:BELONGS_TO]-(:Identity)-[:HAS_TRAIT]->(t:Trait)
DETACH DELETE t
RETURN count(*) AS deleted
"""

FORGET_CONSENTS = """
MATCH (:Customer {id: $id})<-[:BELONGS_TO]-(:Identity)-[d:CONSENT]->(:Purpose)
DELETE d
RETURN count(*) AS deleted
"""

FORGET_LINKS = """
MATCH (:Customer {id: $id})<-[:BELONGS_TO]-(:Identity)-[r:LINKED]-(:Identity)
WITH DISTINCT r
DELETE r
RETURN count(*) AS deleted
"""

FORGET_ALIASES = """
MATCH (a:Customer)-[:MERGED_INTO]->(:Customer {id: $id})
DETACH DELETE a
RETURN count(*) AS deleted
"""

RECORD_ERASED = """
UNWIND $hashes AS hash
MERGE (e:Erased {hash: hash})
ON CREATE SET e.at = $at
"""

# A store erased before the HMAC: each salted hash becomes a keyed one.
REKEY_ERASED = """
UNWIND $rows AS row
MATCH (e:Erased {hash: row.old})
SET e.hash = row.new
"""

# Trait reports written before ``instant`` existed whose text may be a timestamp.
TIMESTAMP_TRAITS = """
MATCH (t:Trait)
WHERE t.instant IS NULL AND t.value =~ $shape
RETURN elementId(t) AS id, t.value AS value
"""

SET_TRAIT_INSTANTS = """
UNWIND $rows AS row
MATCH (t:Trait)
WHERE elementId(t) = row.id
SET t.instant = datetime(row.instant)
"""

ALL_ERASED = "MATCH (e:Erased) RETURN e.hash AS hash ORDER BY hash"

ANY_ERASED = "MATCH (e:Erased) RETURN e.hash AS hash LIMIT 1"

EVENT_IDS_AFTER = """
MATCH (e:Event) WHERE e.id > $after
RETURN e.id AS id ORDER BY id LIMIT $pageSize
"""

IMPORT_EVENTS = "UNWIND $ids AS id MERGE (e:Event {id: id}) ON CREATE SET e.at = $at"

# Bans, BELONGS_TO and PERFORMED go with the nodes.
FORGET_NODES = "MATCH (:Customer {id: $id})<-[:BELONGS_TO]-(n:Identity) DETACH DELETE n"

FORGET_CUSTOMER = "MATCH (c:Customer {id: $id}) DETACH DELETE c"

# ---- API keys and the audit trail ---------------------------------------------------------

API_KEY_NAMED = "MATCH (k:ApiKey {name: $name}) RETURN properties(k) AS key"

CREATE_API_KEY = """
CREATE (:ApiKey {name: $name, role: $role, purposes: $purposes, secretHash: $secretHash,
                 createdAt: $createdAt})
"""

API_KEYS = "MATCH (k:ApiKey) RETURN properties(k) AS key"

API_KEY_BY_HASH = "MATCH (k:ApiKey {secretHash: $secretHash}) RETURN properties(k) AS key"

REVOKE_API_KEY = """
MATCH (k:ApiKey {name: $name})
SET k.revokedAt = coalesce(k.revokedAt, $at)
RETURN count(k) AS found
"""

# Reserves ``$count`` sequence numbers; the counter node's lock orders concurrent appenders
# (audit entries do not take the writers' lock, so reads being audited never wait on ingest).
APPEND_AUDIT = """
MERGE (m:IdgraphMeta {name: 'audit_seq'})
ON CREATE SET m.value = 0
WITH m, m.value AS last
SET m.value = last + size($rows)
WITH last
UNWIND range(0, size($rows) - 1) AS i
WITH last + i + 1 AS seq, $rows[i] AS row
CREATE (:AuditEntry {seq: seq, at: datetime(row.at), actor: row.actor,
                     purpose: row.purpose, operation: row.operation,
                     customerId: row.customerId, detail: row.detail})
"""

AUDIT_LOG = """
MATCH (e:AuditEntry)
WHERE e.seq < $before AND ($customerId IS NULL OR e.customerId = $customerId)
WITH e ORDER BY e.seq DESC LIMIT $pageSize
RETURN properties(e) AS entry
"""

COUNT_AUDIT = """
MATCH (e:AuditEntry)
WHERE $customerId IS NULL OR e.customerId = $customerId
RETURN count(e) AS total
"""

# The reports of some trait names on each customer's nodes, for ``trait_values``: the
# adapter keeps each name's latest in ``merge_traits``'s order (time, event id, node key),
# compared in Python so string ties break exactly as there.
TRAIT_VALUES = """
UNWIND $ids AS id
MATCH (:Customer {id: id})<-[:BELONGS_TO]-(n:Identity)-[:HAS_TRAIT]->(t:Trait)
WHERE t.name IN $names
RETURN id AS customer, t.name AS name, t.value AS value,
       [t.at.epochSeconds, t.at.nanosecond] AS at, t.eventId AS eventId, n.key AS key
"""

# ---- segments ----------------------------------------------------------------------------
#
# A segment statement is joined by idgraph.store.neo4j_segments from the pieces below, and
# from nothing else: a start that binds the candidate customers ``c``, a WHERE made of
# condition fragments joined with AND / OR / NOT, and a tail. A fragment names its own
# values ``$_name``; the compiler renames them ``$p<n>_name``, one prefix per condition,
# so one filter can hold the same kind of condition twice. Statement-wide parameters:
# ``$now`` (grants expire against it) and ``$granted`` (the stored status of a grant).
# Every condition fragment is true or false, never null: ``NOT`` of a null is null, and a
# customer would drop out of a condition and of its negation alike.

# The latest report of a trait across the customer's nodes (idgraph.domain.profile.
# merge_traits: latest ``at``, then the later event id, then the larger node key), as a
# list of zero or one Trait node.
SEGMENT_TRAIT = {
    # eq and in: strings and booleans by their JSON text; numbers by value (1 = 1.0).
    "in": """
any(t IN COLLECT {
  MATCH (c)<-[:BELONGS_TO]-(n:Identity)-[:HAS_TRAIT]->(t:Trait)
  WHERE t.name = $_name
  RETURN t ORDER BY t.at DESC, t.eventId DESC, n.key DESC LIMIT 1
} WHERE t.value IN $_texts OR coalesce(toFloat(t.value) IN $_numbers, false))
""",
    "exists": """
EXISTS {
  MATCH (c)<-[:BELONGS_TO]-(:Identity)-[:HAS_TRAIT]->(t:Trait)
  WHERE t.name = $_name
}
""",
    # A JSON number's text is all toFloat reads; any other JSON text gives null.
    "number": """
any(t IN COLLECT {
  MATCH (c)<-[:BELONGS_TO]-(n:Identity)-[:HAS_TRAIT]->(t:Trait)
  WHERE t.name = $_name
  RETURN t ORDER BY t.at DESC, t.eventId DESC, n.key DESC LIMIT 1
} WHERE any(x IN [toFloat(t.value)] WHERE x IS NOT NULL
          AND ($_gt IS NULL OR x > $_gt) AND ($_gte IS NULL OR x >= $_gte)
          AND ($_lt IS NULL OR x < $_lt) AND ($_lte IS NULL OR x <= $_lte)))
""",
    # ``instant`` is set on write for string values that are RFC 3339 timestamps.
    "instant": """
any(t IN COLLECT {
  MATCH (c)<-[:BELONGS_TO]-(n:Identity)-[:HAS_TRAIT]->(t:Trait)
  WHERE t.name = $_name
  RETURN t ORDER BY t.at DESC, t.eventId DESC, n.key DESC LIMIT 1
} WHERE any(x IN [t.instant] WHERE x IS NOT NULL
          AND ($_gt IS NULL OR x > $_gt) AND ($_gte IS NULL OR x >= $_gte)
          AND ($_lt IS NULL OR x < $_lt) AND ($_lte IS NULL OR x <= $_lte)))
""",
}

SEGMENT_IDENTIFIER = """
EXISTS {
  MATCH (c)<-[:BELONGS_TO]-(n:Identity)
  WHERE n.kind = $_kind AND ($_prefix IS NULL OR n.value STARTS WITH $_prefix)
}
"""

# Distinct interactions: one performed by two of the customer's nodes counts once.
SEGMENT_INTERACTIONS = {
    "any": """
EXISTS {
  MATCH (c)<-[:BELONGS_TO]-(:Identity)-[:PERFORMED]->(i:Interaction)
  WHERE ($_type IS NULL OR i.type = $_type) AND ($_channel IS NULL OR i.channel = $_channel)
    AND ($_since IS NULL OR i.at >= $_since)
}
""",
    "count": """
COUNT {
  MATCH (c)<-[:BELONGS_TO]-(:Identity)-[:PERFORMED]->(i:Interaction)
  WHERE ($_type IS NULL OR i.type = $_type) AND ($_channel IS NULL OR i.channel = $_channel)
    AND ($_since IS NULL OR i.at >= $_since)
  RETURN DISTINCT i
} >= $_atLeast
""",
}

# The customer-level decision (idgraph.domain.consent.evaluate): the decision recorded
# last across the customer's nodes, if it has not expired, else the purpose's default.
SEGMENT_CONSENT = """
reduce(allows = $_default, d IN COLLECT {
  MATCH (c)<-[:BELONGS_TO]-(:Identity)-[d:CONSENT]->(p:Purpose)
  WHERE p.name = $_purpose
  RETURN d ORDER BY d.recordedAt DESC, d.seq DESC LIMIT 1
} | CASE WHEN d.expiresAt IS NULL OR d.expiresAt > $now THEN d.status = $granted
    ELSE allows END) = $_allows
"""

# Whether a purpose may see the customer at all (idgraph.domain.segment.visible): the
# customer-level decision allows it, or an identifier's own latest decision is a live
# grant (devices and accounts follow the customer).
SEGMENT_VISIBLE = """
(reduce(allows = $_default, d IN COLLECT {
   MATCH (c)<-[:BELONGS_TO]-(:Identity)-[d:CONSENT]->(p:Purpose)
   WHERE p.name = $_purpose
   RETURN d ORDER BY d.recordedAt DESC, d.seq DESC LIMIT 1
 } | CASE WHEN d.expiresAt IS NULL OR d.expiresAt > $now THEN d.status = $granted
     ELSE allows END)
 OR EXISTS {
   MATCH (c)<-[:BELONGS_TO]-(n:Identifier)
   WHERE any(d IN COLLECT {
     MATCH (n)-[d:CONSENT]->(p:Purpose)
     WHERE p.name = $_purpose
     RETURN d ORDER BY d.recordedAt DESC, d.seq DESC LIMIT 1
   } WHERE (d.expiresAt IS NULL OR d.expiresAt > $now) AND d.status = $granted)
 })
"""

SEGMENT_TIME = {
    "created_at": """
($_eq IS NULL OR c.createdAt = $_eq) AND ($_gt IS NULL OR c.createdAt > $_gt)
AND ($_gte IS NULL OR c.createdAt >= $_gte) AND ($_lt IS NULL OR c.createdAt < $_lt)
AND ($_lte IS NULL OR c.createdAt <= $_lte)
""",
    "updated_at": """
($_eq IS NULL OR c.updatedAt = $_eq) AND ($_gt IS NULL OR c.updatedAt > $_gt)
AND ($_gte IS NULL OR c.updatedAt >= $_gte) AND ($_lt IS NULL OR c.updatedAt < $_lt)
AND ($_lte IS NULL OR c.updatedAt <= $_lte)
""",
}

SEGMENT_SIZE = """
($_eq IS NULL OR c.size = $_eq) AND ($_gt IS NULL OR c.size > $_gt)
AND ($_gte IS NULL OR c.size >= $_gte) AND ($_lt IS NULL OR c.size < $_lt)
AND ($_lte IS NULL OR c.size <= $_lte)
"""

# Some record the customer holds came from the source: a kept trait report, an
# interaction, a consent decision, an accepted link between two of its nodes.
SEGMENT_SOURCE = """
(EXISTS {
   MATCH (c)<-[:BELONGS_TO]-(:Identity)-[:HAS_TRAIT]->(t:Trait) WHERE t.source = $_source
 } OR EXISTS {
   MATCH (c)<-[:BELONGS_TO]-(:Identity)-[:PERFORMED]->(i:Interaction)
   WHERE i.source = $_source
 } OR EXISTS {
   MATCH (c)<-[:BELONGS_TO]-(:Identity)-[d:CONSENT]->(:Purpose) WHERE d.source = $_source
 } OR EXISTS {
   MATCH (c)<-[:BELONGS_TO]-(:Identity)-[r:LINKED]->(:Identity)-[:BELONGS_TO]->(c)
   WHERE r.accepted AND r.source = $_source
 })
"""

# Where the candidates come from: every customer, or, when every member must meet a
# condition an index finds, the customers that condition's index leads to (a superset:
# the whole filter is still checked on each). Each start binds distinct customers ``c``.
SEGMENT_START_ALL = "MATCH (c:Customer)"

SEGMENT_START = {
    # Some node of the customer has a report of the trait with one of these texts.
    "trait": """
MATCH (t:Trait)
WHERE t.name = $_name AND t.value IN $_texts
MATCH (t)<-[:HAS_TRAIT]-(:Identity)-[:BELONGS_TO]->(c:Customer)
WITH DISTINCT c
""",
    "identifier": """
MATCH (n:Identity)
WHERE n.kind = $_kind AND n.value STARTS WITH $_prefix
MATCH (n)-[:BELONGS_TO]->(c:Customer)
WITH DISTINCT c
""",
    # Some node of the customer has a decision for the purpose.
    "consent": """
MATCH (p:Purpose {name: $_purpose})<-[:CONSENT]-(:Identity)-[:BELONGS_TO]->(c:Customer)
WITH DISTINCT c
""",
}

# Only live customers (an absorbed id's node stays, as an alias).
SEGMENT_LIVE = "c.merged = false"

# Each condition every member meets is a step of its own, in rising cost: in one WHERE,
# Neo4j 5.13 works out every COLLECT subquery for each row, where a later step sees only
# the rows left. The planner may still move a step (it is a starting order, not a rule):
# on 270k demo events this halves the example filter's database hits (265k to 131k) but
# doubles those of interactions-and-not-device seen by marketing (327k to 636k).
SEGMENT_THEN = "WITH c WHERE"

# The export's batches continue after the last customer id seen.
SEGMENT_AFTER_ID = "c.id > $afterId"

# Pages: every member in order (the total counts them), the page cut after the cursor
# ``($afterAt, $afterId)``; ties go to the customer id in the same direction. Times come
# back as [epochSeconds, nanosecond] (``neo4j._dt``): an export reads thousands, and the
# driver's DateTime objects cost more than the rest of the row.
SEGMENT_PAGE = {
    "updated_at_desc": """
WITH c ORDER BY c.updatedAt DESC, c.id DESC
WITH collect(c) AS members
RETURN size(members) AS total,
       [m IN [m IN members WHERE $afterId IS NULL OR m.updatedAt < $afterAt
                                  OR (m.updatedAt = $afterAt AND m.id < $afterId)][..$limit]
        | m {.id, .size, .kindCounts, .splitFrom,
             createdAt: [m.createdAt.epochSeconds, m.createdAt.nanosecond],
             updatedAt: [m.updatedAt.epochSeconds, m.updatedAt.nanosecond],
             aliases: [(a:Customer)-[:MERGED_INTO]->(m) | a.id]}] AS customers
""",
    "updated_at_asc": """
WITH c ORDER BY c.updatedAt, c.id
WITH collect(c) AS members
RETURN size(members) AS total,
       [m IN [m IN members WHERE $afterId IS NULL OR m.updatedAt > $afterAt
                                  OR (m.updatedAt = $afterAt AND m.id > $afterId)][..$limit]
        | m {.id, .size, .kindCounts, .splitFrom,
             createdAt: [m.createdAt.epochSeconds, m.createdAt.nanosecond],
             updatedAt: [m.updatedAt.epochSeconds, m.updatedAt.nanosecond],
             aliases: [(a:Customer)-[:MERGED_INTO]->(m) | a.id]}] AS customers
""",
    "created_at_desc": """
WITH c ORDER BY c.createdAt DESC, c.id DESC
WITH collect(c) AS members
RETURN size(members) AS total,
       [m IN [m IN members WHERE $afterId IS NULL OR m.createdAt < $afterAt
                                  OR (m.createdAt = $afterAt AND m.id < $afterId)][..$limit]
        | m {.id, .size, .kindCounts, .splitFrom,
             createdAt: [m.createdAt.epochSeconds, m.createdAt.nanosecond],
             updatedAt: [m.updatedAt.epochSeconds, m.updatedAt.nanosecond],
             aliases: [(a:Customer)-[:MERGED_INTO]->(m) | a.id]}] AS customers
""",
    "created_at_asc": """
WITH c ORDER BY c.createdAt, c.id
WITH collect(c) AS members
RETURN size(members) AS total,
       [m IN [m IN members WHERE $afterId IS NULL OR m.createdAt > $afterAt
                                  OR (m.createdAt = $afterAt AND m.id > $afterId)][..$limit]
        | m {.id, .size, .kindCounts, .splitFrom,
             createdAt: [m.createdAt.epochSeconds, m.createdAt.nanosecond],
             updatedAt: [m.updatedAt.epochSeconds, m.updatedAt.nanosecond],
             aliases: [(a:Customer)-[:MERGED_INTO]->(m) | a.id]}] AS customers
""",
}

SEGMENT_COUNT = "RETURN count(c) AS total"

SEGMENT_BATCH = """
WITH c ORDER BY c.id LIMIT $pageSize
RETURN c.id AS id, [c.createdAt.epochSeconds, c.createdAt.nanosecond] AS createdAt,
       [c.updatedAt.epochSeconds, c.updatedAt.nanosecond] AS updatedAt, c.size AS size,
       c.kindCounts AS kindCounts, c.splitFrom AS splitFrom,
       [(a:Customer)-[:MERGED_INTO]->(c) | a.id] AS aliases
"""

# ---- saved segments ------------------------------------------------------------------------

PUT_SEGMENT = """
MERGE (s:Segment {name: $name})
SET s.filter = $filter, s.description = $description, s.createdAt = $createdAt
"""

SEGMENTS = "MATCH (s:Segment) RETURN properties(s) AS segment"

SEGMENT_NAMED = "MATCH (s:Segment {name: $name}) RETURN properties(s) AS segment"

DELETE_SEGMENT = """
MATCH (s:Segment {name: $name})
DELETE s
RETURN count(*) AS deleted
"""

# ---- the health report (idgraph.domain.health) -------------------------------------------
# Whole-graph aggregates, read together in one transaction. Times are stored in UTC, so
# ``date()`` is the UTC day. Each returns ``key`` and ``n`` unless it says otherwise.

HEALTH_SIZES = "MATCH (c:Customer) WHERE c.merged = false RETURN c.size AS key, count(*) AS n"

HEALTH_NEW_CUSTOMERS = """
MATCH (c:Customer) WHERE c.merged = false
RETURN toString(date(c.createdAt)) AS key, count(*) AS n
"""

HEALTH_MERGES = """
MATCH (:Customer)-[m:MERGED_INTO]->()
RETURN toString(date(m.at)) AS key, count(*) AS n
"""

HEALTH_EVENTS = "MATCH (e:Event) RETURN toString(date(e.at)) AS key, count(*) AS n"

HEALTH_INTERACTIONS = "MATCH (i:Interaction) RETURN i.type AS key, count(*) AS n"

HEALTH_REFUSED = """
MATCH ()-[r:LINKED]->() WHERE r.accepted = false
RETURN r.rule AS rule, toString(date(r.lastAt)) AS day, count(*) AS n
"""

# The latest decision per customer and purpose, in the order profiles read them.
HEALTH_CONSENT = """
MATCH (c:Customer)<-[:BELONGS_TO]-(:Identity)-[d:CONSENT]->(p:Purpose)
WITH c, p.name AS purpose, d ORDER BY d.recordedAt DESC, d.seq DESC
WITH c, purpose, head(collect(d)) AS latest
RETURN purpose,
       CASE WHEN latest.status = $granted AND latest.expiresAt <= $now THEN $expired
            ELSE latest.status END AS status,
       count(*) AS n
"""

# The most linked identity nodes; the degree comes from Neo4j's counts, not a traversal.
HEALTH_SUPER_NODES = """
MATCH (n:Identity)
WITH n, COUNT { (n)-[:LINKED]-() } AS links WHERE links > 0
WITH n, links ORDER BY links DESC, n.key LIMIT $limit
RETURN n.key AS key, n.kind AS kind, links,
       COUNT { (n)-[r:LINKED]-() WHERE r.accepted = false } AS refused
"""


# ---- retention (idgraph.store.neo4j_retention; domain.retention says what goes) ---------

# Found through a time index, and every one found goes: each batch takes the oldest.
RETENTION_OLDEST = {
    "interactions": """
MATCH (i:Interaction) WHERE i.at < $cutoff
WITH i LIMIT $limit
DETACH DELETE i
RETURN count(*) AS deleted
""",
    "audit": """
MATCH (e:AuditEntry) WHERE e.at < $cutoff
WITH e LIMIT $limit
DELETE e
RETURN count(*) AS deleted
""",
}

# The next ``$limit`` rows by key after ``$after``, each with whether it goes.
RETENTION_WINDOW = {
    "event_ids": """
MATCH (e:Event) WHERE e.id > $after
WITH e ORDER BY e.id LIMIT $limit
RETURN e.id AS key,
       e.at < $cutoff AND NOT EXISTS { MATCH (:Interaction {id: e.id + $suffix}) } AS doomed
""",
    "expired_consents": """
MATCH (n:Identity) WHERE n.key > $after
WITH n ORDER BY n.key LIMIT $limit
OPTIONAL MATCH (n)-[d:CONSENT]->(p:Purpose)
WHERE d.expiresAt <= $cutoff AND EXISTS {
  MATCH (n)-[later:CONSENT]->(p)
  WHERE later.recordedAt > d.recordedAt OR (later.recordedAt = d.recordedAt AND later.seq > d.seq)
}
RETURN n.key AS key, collect(elementId(d)) AS doomed
ORDER BY key
""",
    "anonymous_customers": """
MATCH (c:Customer) WHERE c.id > $after
WITH c ORDER BY c.id LIMIT $limit
RETURN c.id AS key,
       c.merged = false AND c.updatedAt < $cutoff AND NOT EXISTS {
         MATCH (n:Identity)-[:BELONGS_TO]->(c)
         WHERE NOT n.kind IN $anonymous
            OR EXISTS { MATCH (n)-[:HAS_TRAIT]->(t:Trait) WHERE t.at >= $cutoff }
            OR EXISTS { MATCH (n)-[s:CONSENT]->(:Purpose) WHERE s.at >= $cutoff }
            OR EXISTS { MATCH (n)-[:PERFORMED]->(i:Interaction) WHERE i.at >= $cutoff }
            OR EXISTS { MATCH (n)-[l:LINKED]-(:Identity) WHERE l.lastAt >= $cutoff }
       } AS doomed
""",
}

RETENTION_COUNT = {
    "interactions": "MATCH (i:Interaction) WHERE i.at < $cutoff RETURN count(i) AS total",
    "audit": "MATCH (e:AuditEntry) WHERE e.at < $cutoff RETURN count(e) AS total",
    "event_ids": """
MATCH (e:Event) WHERE e.at < $cutoff
  AND NOT EXISTS { MATCH (:Interaction {id: e.id + $suffix}) }
RETURN count(e) AS total
""",
    "expired_consents": """
MATCH (n:Identity)-[d:CONSENT]->(p:Purpose)
WHERE d.expiresAt <= $cutoff AND EXISTS {
  MATCH (n)-[later:CONSENT]->(p)
  WHERE later.recordedAt > d.recordedAt OR (later.recordedAt = d.recordedAt AND later.seq > d.seq)
}
RETURN count(d) AS total
""",
    "anonymous_customers": """
MATCH (c:Customer {merged: false}) WHERE c.updatedAt < $cutoff AND NOT EXISTS {
  MATCH (n:Identity)-[:BELONGS_TO]->(c)
  WHERE NOT n.kind IN $anonymous
     OR EXISTS { MATCH (n)-[:HAS_TRAIT]->(t:Trait) WHERE t.at >= $cutoff }
     OR EXISTS { MATCH (n)-[s:CONSENT]->(:Purpose) WHERE s.at >= $cutoff }
     OR EXISTS { MATCH (n)-[:PERFORMED]->(i:Interaction) WHERE i.at >= $cutoff }
     OR EXISTS { MATCH (n)-[l:LINKED]-(:Identity) WHERE l.lastAt >= $cutoff }
}
RETURN count(c) AS total
""",
}

PURGE_EVENT_IDS = "UNWIND $keys AS id MATCH (e:Event {id: id}) DELETE e"

PURGE_CONSENTS = """
UNWIND $keys AS id
MATCH ()-[d:CONSENT]->()
WHERE elementId(d) = id
DELETE d
"""

# A customer goes whole, as ``forget`` removes one (without recording erasure hashes),
# in this order: its interactions unless another customer's node performed them too
# (stores written by early versions), its traits and aliases, its nodes (with their
# links, bans, consents and PERFORMED), itself.
PURGE_CUSTOMERS = (
    """
UNWIND $keys AS id
MATCH (c:Customer {id: id})<-[:BELONGS_TO]-(:Identity)-[:PERFORMED]->(i:Interaction)
WITH DISTINCT c, i
WHERE NOT EXISTS { MATCH (m:Identity)-[:PERFORMED]->(i) WHERE NOT (m)-[:BELONGS_TO]->(c) }
DETACH DELETE i
""",
    """
UNWIND $keys AS id
MATCH (:Customer {id: id})<-[:BELONGS_TO]-(:Identity)-[:HAS_TRAIT]->(t:Trait)
DETACH DELETE t
""",
    "UNWIND $keys AS id MATCH (a:Customer)-[:MERGED_INTO]->(:Customer {id: id}) DETACH DELETE a",
    """
UNWIND $keys AS id
MATCH (:Customer {id: id})<-[:BELONGS_TO]-(n:Identity)
WITH n, n.key AS removed
DETACH DELETE n
RETURN removed
""",
    "UNWIND $keys AS id MATCH (c:Customer {id: id}) DETACH DELETE c",
)
