// Snapshot export: the interactions of a page of users (every type), for the GNN.
// value is the rating for RATED and the dwell seconds for VIEWED (0 otherwise).
// session is the interaction's session id (null when it has none).
// Returns: user_id, item_id, type, ts, value, session.
// Params: $user_ids (list).
UNWIND $user_ids AS uid
MATCH (u:User {id: uid})-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->(i:Item)
RETURN uid AS user_id, i.id AS item_id, type(r) AS type, r.ts AS ts,
       coalesce(r.value, r.dwell, 0.0) AS value, r.session AS session
