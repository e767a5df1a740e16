// A user's most recent interactions, newest first.
// Returns: item_id, type, ts, value, dwell, session.
// Params: $user_id, $limit (int).
MATCH (u:User {id: $user_id})-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->(i:Item)
RETURN i.id AS item_id, type(r) AS type, r.ts AS ts, r.value AS value, r.dwell AS dwell, r.session AS session
ORDER BY r.ts DESC
LIMIT $limit
