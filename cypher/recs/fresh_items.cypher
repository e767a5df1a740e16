// Recently added, available items, newest first, so new content gets exposure.
// Returns: item_id, created_at.
// Params: $since (epoch seconds), $limit.
MATCH (i:Item)
WHERE i.created_at >= $since AND coalesce(i.available, true)
RETURN i.id AS item_id, i.created_at AS created_at
ORDER BY i.created_at DESC, item_id
LIMIT $limit
