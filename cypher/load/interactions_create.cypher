// Write a batch of NEW interactions of any type in one statement (the fast path, after
// load/interactions_check removed the keys already stored, when any were). The rows come as
// columns, one list per field (row n is $key[n], $user[n], ...): Neo4j decodes a few lists of
// plain values for less CPU than a map per row. Items
// and users are found by the element ids load/resolve_refs returned (a cheap seek), and each node's
// id property is checked again: an element id that went stale (its node deleted, the id reused)
// leaves a node NULL and CREATE then fails the whole transaction, so nothing lands on the wrong
// node (the loader then writes the batch with the MERGE form, load/interactions, by id). $type[n]
// is one of RATED, VIEWED, CLICKED, PURCHASED, SKIPPED: the loader sets it from its
// InteractionType enum, never from raw input, and Cypher's $(...) takes it as a value, not as
// query text. Null values are simply not stored. The uniqueness constraint on the key still
// guards against a concurrent writer (the loader then retries the batch with the MERGE form).
// The users written are stamped: history_at = the server's clock in epoch seconds, past any stamp
// they have (strictly increasing per user; the write already holds the user's lock), so that API
// processes polling repo/users_changed stop serving their held state.
// Returns: count of rows seen.
// Params: lists of equal length: $type, $key, $user, $item, $ie, $ue (element ids of item and
//   user), $ts (float), $value (float|null), $dwell (float|null), $session (string|null).
UNWIND range(0, size($key) - 1) AS n
OPTIONAL MATCH (i) WHERE elementId(i) = $ie[n]
OPTIONAL MATCH (u) WHERE elementId(u) = $ue[n]
WITH n, CASE WHEN i:Item AND i.id = $item[n] THEN i END AS i,
     CASE WHEN u:User AND u.id = $user[n] THEN u END AS u
CREATE (u)-[r:$($type[n]) {key: $key[n], ts: $ts[n], value: $value[n], dwell: $dwell[n], session: $session[n]}]->(i)
WITH u, count(*) AS seen
WITH u, seen, datetime.realtime().epochMillis / 1000.0 AS now
SET u.history_at = CASE WHEN u.history_at >= now THEN u.history_at + 0.001 ELSE now END
RETURN sum(seen) AS seen
