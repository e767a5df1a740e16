// Make $id the live version of its kind, in one transaction: the current live one becomes
// 'retired' and is remembered as the new one's previous (for rollback).
// Returns: id, previous.
// Params: $id, $now.
MATCH (m:ModelVersion {id: $id})
OPTIONAL MATCH (old:ModelVersion {kind: m.kind, status: 'live'}) WHERE old <> m
SET old.status = 'retired', old.retired_at = $now
SET m.status = 'live', m.promoted_at = $now, m.previous = old.id
RETURN m.id AS id, old.id AS previous
