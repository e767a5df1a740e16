// Write a batch of interactions of one type ({{rel}}: RATED, VIEWED, CLICKED, PURCHASED or
// SKIPPED) in one transaction. Idempotent: a row whose key exists is left as it is. Users are
// created on first sight (events may arrive before profiles); items must exist (the loader
// checks with load/resolve_refs first, rows for unknown items are dropped by the MATCH).
// The users written are stamped: history_at = the server's clock in epoch seconds, past any stamp
// they have (strictly increasing per user; the write already holds the user's lock), so that API
// processes polling repo/users_changed stop serving their held state.
// Returns: count of rows seen (use the summary counters for relationships created).
// Params: $rows: list of {key, user, item, ts: float, value: float|null, dwell: float|null,
//   session: string|null}.
UNWIND $rows AS row
MATCH (i:Item {id: row.item})
MERGE (u:User {id: row.user})
ON CREATE SET u.created_at = row.ts
MERGE (u)-[r:{{rel}} {key: row.key}]->(i)
ON CREATE SET r.ts = row.ts, r.value = row.value, r.dwell = row.dwell, r.session = row.session
WITH u, count(*) AS seen
WITH u, seen, datetime.realtime().epochMillis / 1000.0 AS now
SET u.history_at = CASE WHEN u.history_at >= now THEN u.history_at + 0.001 ELSE now END
RETURN sum(seen) AS seen
