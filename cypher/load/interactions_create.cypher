// Write a batch of NEW interactions of any type in one statement (the fast path, after
// load/interactions_check removed the keys already stored and load/users_first_sight created
// the users not seen before, earlier in the same transaction). row.type is one of RATED,
// VIEWED, CLICKED, PURCHASED, SKIPPED: the loader sets it from its InteractionType enum, never
// from raw input, and Cypher's $(...) takes it as a value, not as query text. Null values in
// the property map are simply not stored. The uniqueness constraint on the key still guards
// against a concurrent writer (the loader then retries the batch with the MERGE form,
// load/interactions).
// Returns: count of rows seen.
// Params: $rows: list of {type, key, user, item, ts: float, value: float|null, dwell: float|null,
//   session: string|null}.
UNWIND $rows AS row
MATCH (i:Item {id: row.item})
MATCH (u:User {id: row.user})
CREATE (u)-[r:$(row.type) {key: row.key, ts: row.ts, value: row.value, dwell: row.dwell, session: row.session}]->(i)
RETURN count(*) AS seen
