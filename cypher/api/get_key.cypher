// An API key's record by its public id (the part of the key before the secret).
// Returns: id, hash, scopes, origins (empty for keys without), revoked_at (null while valid).
// Params: $id.
MATCH (k:ApiKey {id: $id})
RETURN k.id AS id, k.hash AS hash, k.scopes AS scopes, coalesce(k.origins, []) AS origins, k.revoked_at AS revoked_at
