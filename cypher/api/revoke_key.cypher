// Revoke an API key (kept for audit, refused from now on).
// Returns: id (no row when there is no such key).
// Params: $id, $now.
MATCH (k:ApiKey {id: $id})
SET k.revoked_at = coalesce(k.revoked_at, $now)
RETURN k.id AS id
