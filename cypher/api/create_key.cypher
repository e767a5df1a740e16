// Store a new API key: only its SHA-256 hash, never the key.
// Returns: id.
// Params: $id, $hash, $scopes (list), $key_name, $origins (list: allowed origins of an interact key), $now.
CREATE (k:ApiKey {id: $id, hash: $hash, scopes: $scopes, name: $key_name, origins: $origins, created_at: $now})
RETURN k.id AS id
