// Set a model version's status ('rejected', 'rolled_back', 'retired', 'failed') with a reason.
// Returns: id.
// Params: $id, $status, $reason, $now.
MATCH (m:ModelVersion {id: $id})
SET m.status = $status, m.status_reason = $reason, m.status_at = $now
RETURN m.id AS id
