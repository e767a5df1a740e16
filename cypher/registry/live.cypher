// The live model version of one kind (at most one).
// Returns: m (properties), or no row.
// Params: $kind.
MATCH (m:ModelVersion {kind: $kind, status: 'live'})
RETURN properties(m) AS m
ORDER BY m.promoted_at DESC
LIMIT 1
