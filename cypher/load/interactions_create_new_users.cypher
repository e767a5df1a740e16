// Like load/interactions_create, for the rows of users that load/users_first_sight created
// earlier in the same transaction (their element ids are not known yet), or whose element ids the
// loader does not remember: users found by id.
// A missing item or user fails the transaction (CREATE with a NULL node), as there.
// The users written are stamped: history_at = the server's clock in epoch seconds, past any stamp
// they have (strictly increasing per user; the write already holds the user's lock), so that API
// processes polling repo/users_changed stop serving their held state.
// Returns: count of rows seen.
// Params: lists of equal length (row n is $key[n], ...): $type, $key, $user, $item, $ie (element
//   id of the item), $ts (float), $value (float|null), $dwell (float|null), $session (string|null).
UNWIND range(0, size($key) - 1) AS n
OPTIONAL MATCH (i) WHERE elementId(i) = $ie[n]
OPTIONAL MATCH (u:User {id: $user[n]})
WITH n, CASE WHEN i:Item AND i.id = $item[n] THEN i END AS i,
     u
CREATE (u)-[r:$($type[n]) {key: $key[n], ts: $ts[n], value: $value[n], dwell: $dwell[n], session: $session[n]}]->(i)
WITH u, count(*) AS seen
WITH u, seen, datetime.realtime().epochMillis / 1000.0 AS now
SET u.history_at = CASE WHEN u.history_at >= now THEN u.history_at + 0.001 ELSE now END
RETURN sum(seen) AS seen
