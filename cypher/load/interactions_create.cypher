// Write a batch of NEW interactions of any type in one statement (the fast path, after
// load/interactions_check removed the keys already stored, when any were). Items and users are
// found by the element ids load/resolve_refs returned (a cheap seek), and each node's id property
// is checked again: an element id that went stale (its node deleted, the id reused) leaves a
// node NULL and CREATE then fails the whole transaction, so nothing lands on the wrong node (the
// loader then writes the batch with the MERGE form, load/interactions, by id). row.type is one of
// RATED, VIEWED, CLICKED, PURCHASED, SKIPPED: the loader sets it from its InteractionType enum,
// never from raw input, and Cypher's $(...) takes it as a value, not as query text. Null values in
// the property map are simply not stored. The uniqueness constraint on the key still guards
// against a concurrent writer (the loader then retries the batch with the MERGE form).
// Returns: count of rows seen.
// Params: $rows: list of {type, key, user, item, ue, ie (element ids of user and item), ts: float,
//   value: float|null, dwell: float|null, session: string|null}.
UNWIND $rows AS row
OPTIONAL MATCH (i) WHERE elementId(i) = row.ie
OPTIONAL MATCH (u) WHERE elementId(u) = row.ue
WITH row, CASE WHEN i:Item AND i.id = row.item THEN i END AS i,
     CASE WHEN u:User AND u.id = row.user THEN u END AS u
CREATE (u)-[r:$(row.type) {key: row.key, ts: row.ts, value: row.value, dwell: row.dwell, session: row.session}]->(i)
RETURN count(*) AS seen
