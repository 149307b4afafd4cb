// idgraph: ready queries for Neo4j Browser (http://localhost:7474 with `docker compose up`).
//
// The graph (every identity node also carries the label Identity):
//   (:Identifier|Device|Account {key, kind, value})-[:BELONGS_TO]->(:Customer {id, size, kindCounts})
//   (identity)-[:LINKED {source, at, eventId, accepted, rule}]->(identity)   evidence, rule = why refused
//   (identity)-[:PERFORMED {node, at}]->(:Interaction {id, type, channel, at})   from the event's subject only,
//       node and at repeat the identity's key and the interaction's time (indexed together)
//   (identity)-[:CONSENT {status, at, expiresAt, source, recordedAt, seq}]->(:Purpose {name})
//       latest = recorded last (recordedAt, then seq), `at` is the time the source claimed
//   (:Customer {merged: true})-[:MERGED_INTO {at}]->(:Customer {merged: false})  absorbed ids
// Keys are `kind:value`, normalized: `email:alice@example.com`, `phone:+16502530000`,
// `device:ab12`, `account:shop:42`. Live customers have `merged: false`.
//
// Set the parameters once in Browser, then run any query below:
//   :param key => 'email:alice@example.com'
//   :param customerId => 'cus_0123456789abcdef'
//   :param purpose => 'marketing'
//   :param rule => 'limit:user_id'
//   :param minCustomers => 2

// A customer's whole cluster, found by any of its identifiers: its identity nodes and the links among them.
MATCH (:Identity {key: $key})-[:BELONGS_TO]->(c:Customer)
MATCH (n:Identity)-[b:BELONGS_TO]->(c)
OPTIONAL MATCH (n)-[l:LINKED]->(m:Identity)-[:BELONGS_TO]->(c)
RETURN c, b, n, l, m;

// The 25 biggest customers, with their identity nodes counted per kind.
MATCH (c:Customer)
WHERE c.merged = false
RETURN c.id AS customer, c.size AS size, c.kindCounts AS kinds, c.createdAt AS created
ORDER BY size DESC
LIMIT 25;

// Identifiers that evidence ties to many customers (shared devices, family emails, junk values): candidates for the blocked list.
MATCH (n:Identity)-[:LINKED {accepted: false}]-(:Identity)
WITH DISTINCT n
MATCH (n)-[l:LINKED]-(:Identity)-[:BELONGS_TO]->(c:Customer)
WITH n, count(DISTINCT c) AS customers, count(l) AS links,
     sum(CASE WHEN l.accepted THEN 0 ELSE 1 END) AS refused
WHERE customers >= $minCustomers
RETURN n.key AS identifier, customers, links, refused
ORDER BY customers DESC, links DESC
LIMIT 50;

// Links the rules refused, counted by rule, with a few examples of each.
MATCH (a:Identity)-[l:LINKED]->(b:Identity)
WHERE l.accepted = false
RETURN l.rule AS rule, count(*) AS links, collect(a.key + ' / ' + b.key)[..5] AS examples
ORDER BY links DESC;

// The latest 50 links refused by one rule ($rule: limit:<kind>, max_size, ban or unlink), with both customers.
MATCH (a:Identity)-[l:LINKED]->(b:Identity)
WHERE l.accepted = false AND l.rule = $rule
MATCH (a)-[:BELONGS_TO]->(ca:Customer)
MATCH (b)-[:BELONGS_TO]->(cb:Customer)
RETURN a.key AS identifierA, ca.id AS customerA, b.key AS identifierB, cb.id AS customerB,
       l.source AS source,
       l.eventId AS eventId, l.lastAt AS refusedAt
ORDER BY refusedAt DESC
LIMIT 50;

// Merge history of a customer, by its id or any id it absorbed: every absorbed id, when, and through which customer.
MATCH (named:Customer {id: $customerId})
OPTIONAL MATCH (named)-[:MERGED_INTO]->(survivor:Customer)
WITH coalesce(survivor, named) AS c
MATCH (absorbed:Customer)-[m:MERGED_INTO]->(c)
RETURN c.id AS customer, absorbed.id AS absorbedId, m.at AS mergedAt, m.via AS via
ORDER BY mergedAt;

// Customers split off a customer by a steward's unlink (they record where they came from).
MATCH (part:Customer {splitFrom: $customerId})
RETURN part.id AS part, part.size AS size, part.createdAt AS splitAt
ORDER BY splitAt;

// Consent per purpose for the customer of an identifier: each identity node's latest recorded decision per purpose.
MATCH (:Identity {key: $key})-[:BELONGS_TO]->(c:Customer)
MATCH (n:Identity)-[:BELONGS_TO]->(c)
MATCH (n)-[d:CONSENT]->(p:Purpose)
WITH p, n, d ORDER BY d.recordedAt DESC, d.seq DESC
WITH p, n, collect(d)[0] AS latest
RETURN p.name AS purpose, n.key AS identifier, latest.status AS status, latest.at AS decidedAt,
       latest.expiresAt AS expiresAt, latest.source AS source
ORDER BY purpose, identifier;

// Consent per purpose across the graph: identity nodes whose latest decision grants, denies, or has expired.
MATCH (n:Identity)-[d:CONSENT]->(p:Purpose)
WITH p, n, d ORDER BY d.recordedAt DESC, d.seq DESC
WITH p, n, collect(d)[0] AS latest
RETURN p.name AS purpose,
       sum(CASE WHEN latest.status = 'granted'
                 AND (latest.expiresAt IS NULL OR latest.expiresAt > datetime()) THEN 1 ELSE 0 END)
         AS granted,
       sum(CASE WHEN latest.status = 'denied' THEN 1 ELSE 0 END) AS denied,
       sum(CASE WHEN latest.status = 'granted' AND latest.expiresAt <= datetime() THEN 1 ELSE 0 END)
         AS expired
ORDER BY purpose;

// The newest 25 interactions of the customer of an identifier, with who performed them.
MATCH (:Identity {key: $key})-[:BELONGS_TO]->(c:Customer)
MATCH (n:Identity)-[:BELONGS_TO]->(c)
MATCH (n)-[:PERFORMED]->(i:Interaction)
WITH i, collect(n.key) AS performedBy
RETURN i.type AS type, i.channel AS channel, i.at AS at, i.source AS source, performedBy
ORDER BY at DESC
LIMIT 25;
