// Write a batch of NEW interactions of any type in one statement (the fast path, after
// load/interactions_check removed the keys already stored). row.type is one of RATED, VIEWED,
// CLICKED, PURCHASED, SKIPPED: the loader sets it from its InteractionType enum, never from raw
// input, and Cypher's $(...) takes it as a value, not as query text. Rows arrive sorted by item,
// so parallel transactions lock shared item nodes in the same order and do not deadlock. The
// uniqueness constraint on the key still guards against a concurrent writer (the loader then
// retries the batch with the MERGE form, load/interactions). Users are created on first sight.
// Returns: count of rows seen.
// Params: $rows: list of {type, key, user, item, ts: float, value: float|null, dwell: float|null,
//   session: string|null}.
UNWIND $rows AS row
MATCH (i:Item {id: row.item})
MERGE (u:User {id: row.user})
ON CREATE SET u.created_at = row.ts
CREATE (u)-[r:$(row.type) {key: row.key, ts: row.ts}]->(i)
SET r.value = row.value, r.dwell = row.dwell, r.session = row.session
RETURN count(*) AS seen
