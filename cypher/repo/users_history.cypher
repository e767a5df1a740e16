// Recent interactions of many users at once (batch recommendations, DataLoaders).
// Returns: user_id, history (list of {item_id, type, ts, value}, newest first, at most $limit).
// Params: $user_ids (list), $limit (int).
UNWIND $user_ids AS uid
MATCH (u:User {id: uid})
RETURN uid AS user_id, COLLECT {
  MATCH (u)-[r:RATED|VIEWED|CLICKED|PURCHASED|SKIPPED]->(i:Item)
  WITH i, r ORDER BY r.ts DESC LIMIT $limit
  RETURN {item_id: i.id, type: type(r), ts: r.ts, value: r.value}
} AS history
