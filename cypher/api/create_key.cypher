// Store a new API key: only its SHA-256 hash, never the key.
// Returns: id.
// Params: $id, $hash, $scopes (list), $key_name, $now.
CREATE (k:ApiKey {id: $id, hash: $hash, scopes: $scopes, name: $key_name, created_at: $now})
RETURN k.id AS id
