// Roll back: the live version becomes 'rolled_back' and its previous version is live again,
// in one transaction. No row when there is no live version or it has no previous.
// Returns: id (live again), from (the version rolled back).
// Params: $kind, $now.
MATCH (cur:ModelVersion {kind: $kind, status: 'live'})
MATCH (prev:ModelVersion {id: cur.previous})
SET cur.status = 'rolled_back', cur.status_at = $now
SET prev.status = 'live', prev.promoted_at = $now
RETURN prev.id AS id, cur.id AS from
