// Model versions of one kind, newest first.
// Returns: m (properties).
// Params: $kind, $limit.
MATCH (m:ModelVersion {kind: $kind})
RETURN properties(m) AS m
ORDER BY m.created_at DESC
LIMIT $limit
